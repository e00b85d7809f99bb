"""Behaviour of the MegActor-Σ network on tiny random models."""

from __future__ import annotations

import pytest
import torch

from megactor_core.models import MegActorConfig, MegActorSigma
from tests.tiny_models import randomize, tiny_config


def block_outputs(model: MegActorSigma, *args, **kwargs) -> list[torch.Tensor]:
    """Run the model and return each denoiser block's output."""
    outputs: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda m, i, o: outputs.append(o)) for b in model.denoiser.blocks]
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return outputs


def test_default_config_is_the_paper_model():
    c = MegActorConfig()
    assert (c.num_layers, c.hidden_size, c.num_heads, c.patch_size) == (28, 1152, 16, 2)
    assert c.reference_blocks == tuple(range(12, 28))
    assert c.temporal_blocks == tuple(range(1, 28, 2))
    assert c.in_channels == 4 + c.driven_channels


@pytest.mark.parametrize("frames", [1, 3])
@pytest.mark.parametrize("size", [(8, 8), (16, 8), (6, 12)])
def test_output_shapes(tiny, frames, size):
    h, w = size
    ref = tiny.encode_reference(torch.randn(2, 4, 8, 8))
    driven = tiny.encode_driving(torch.rand(2, frames, 3, h * 8, w * 8) * 2 - 1)
    assert driven.shape == (2, frames, 4, h, w)
    out = tiny(torch.randn(2, frames, 4, h, w), torch.tensor([1.0, 999.0]), driven=driven,
               reference=ref, audio=torch.randn(2, frames, 7, 12))
    assert out.shape == (2, frames, 8, h, w)
    assert torch.isfinite(out).all()


def test_images_and_videos_share_the_model():
    """A video without temporal modules is its frames run one by one."""
    model = randomize(MegActorSigma(tiny_config(use_temporal=False))).eval()
    x = torch.randn(1, 3, 4, 8, 8)
    audio = torch.randn(1, 3, 5, 12)
    ref = model.encode_reference(torch.randn(1, 4, 8, 8))
    with torch.no_grad():
        video = model(x, 300, reference=ref, audio=audio)
        frames = [model(x[:, i:i + 1], 300, reference=ref, audio=audio[:, i:i + 1]) for i in range(3)]
    torch.testing.assert_close(video, torch.cat(frames, dim=1), rtol=1e-5, atol=1e-5)


def test_reference_acts_only_through_configured_blocks():
    model = randomize(MegActorSigma(tiny_config(num_layers=4, reference_blocks=(2, 3)))).eval()
    x = torch.randn(1, 2, 4, 8, 8)
    a = block_outputs(model, x, 100, reference=model.encode_reference(torch.randn(1, 4, 8, 8)))
    b = block_outputs(model, x, 100, reference=model.encode_reference(torch.randn(1, 4, 8, 8)))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[2], b[2])
    assert sorted(model.encode_reference(torch.randn(1, 4, 8, 8)).keys_values) == [2, 3]
    assert len(model.reference.blocks) == 4


def test_reference_features_are_one_per_video(tiny):
    """Features of a batch-1 reference serve every video of a batch and every frame."""
    ref = tiny.encode_reference(torch.randn(1, 4, 8, 8))
    heads = tiny.config.num_heads
    assert all(k.shape == v.shape == (1, heads, 16, 32 // heads) for k, v in ref.keys_values.values())
    x = torch.randn(2, 2, 4, 8, 8)
    with torch.no_grad():
        shared = tiny(x, 50, reference=ref)
        explicit = tiny(x, 50, reference=type(ref)({i: (k.expand(2, -1, -1, -1), v.expand(2, -1, -1, -1))
                                                    for i, (k, v) in ref.keys_values.items()}))
    torch.testing.assert_close(shared, explicit)


def test_projected_reference_equals_attending_the_concatenated_tokens():
    """Keys/values projected once per video give the attention over ``[frame tokens; reference
    tokens]`` that AnimateAnyone-style reference attention defines."""
    from megactor_core.models.attention import Attention

    torch.manual_seed(0)
    attn = Attention(32, 4)
    x, ref = torch.randn(3, 10, 32), torch.randn(3, 6, 32)
    mask = torch.rand(3, 1, 10, 16) > 0.3
    mask[..., 10:] = True
    with torch.no_grad():
        concatenated = attn(x, torch.cat([x, ref], dim=1), mask)
        projected = attn(x, mask=mask, extra_kv=attn.keys_values(ref))
    torch.testing.assert_close(projected, concatenated, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("keys", [8, 32, 33])
def test_attention_over_few_keys_equals_the_fused_kernel(keys):
    """The explicit product used for a handful of keys (temporal attention) is the same attention,
    gradients included; a reference shared per group of frames is appended once per group."""
    from megactor_core.models.attention import Attention, append_shared, attend

    torch.manual_seed(0)
    q, k, v = (torch.randn(6, 2, n, 16, requires_grad=True) for n in (keys, keys, keys))
    out = attend(q, k, v)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(out.sum(), (q, k, v))
    torch.testing.assert_close(grads, torch.autograd.grad(expected.sum(), (q, k, v)), rtol=1e-4, atol=1e-5)
    extra = torch.randn(2, 2, 5, 16)
    joined = append_shared(k.detach(), extra, 3)
    assert joined.shape == (6, 2, keys + 5, 16)
    torch.testing.assert_close(joined[2, :, keys:], extra[0])
    torch.testing.assert_close(joined[4, :, keys:], extra[1])
    with pytest.raises(ValueError, match="cannot be shared by a batch of 6"):
        append_shared(k.detach(), extra, 2)
    attn = Attention(32, 2)
    with pytest.raises(ValueError, match="mask cannot be combined with extra keys for only 2 of 6"):
        attn(torch.randn(6, 4, 32), mask=torch.ones(6, 1, 4, 9, dtype=torch.bool), extra_kv=(extra, extra),
             extra_group=1)


def test_a_context_of_batch_one_is_shared_by_the_batch():
    from megactor_core.models.attention import Attention

    torch.manual_seed(0)
    attn = Attention(32, 4, context_dim=24, qkv_bias=False)
    x, text = torch.randn(6, 9, 32), torch.randn(1, 5, 24)
    with torch.no_grad():
        shared = attn(x, text)
        repeated = attn(x, text.expand(6, -1, -1))
        each = torch.cat([attn(x[i:i + 1], text) for i in range(6)])
    torch.testing.assert_close(shared, repeated, rtol=0, atol=1e-6)
    torch.testing.assert_close(shared, each, rtol=0, atol=1e-6)
    assert not torch.allclose(shared, attn(x, torch.randn(1, 5, 24)))


def test_reference_may_have_another_resolution(tiny):
    ref = tiny.encode_reference(torch.randn(1, 4, 12, 8))
    assert tiny(torch.randn(1, 1, 4, 8, 8), 10, reference=ref).shape == (1, 1, 8, 8, 8)


def test_attention_mask_blocks_masked_keys():
    """Eq.2: queries masked from some keys do not move when those keys' tokens change."""
    model = randomize(MegActorSigma(tiny_config(num_layers=1, reference_blocks=(0,), use_temporal=False))).eval()
    n = 16  # 8x8 latent, patch 2 -> 4x4 tokens
    queries = torch.tensor([12, 13, 14, 15])  # bottom row ("mouth")
    keys = torch.tensor([0, 1, 2, 3])  # top row ("eyes")
    mask = torch.ones(n, n, dtype=torch.bool)
    mask[queries[:, None], keys[None]] = False
    x = torch.randn(1, 1, 4, 8, 8)
    y = x.clone()
    y[..., :2, :] += torch.randn_like(y[..., :2, :])  # change the top row of tokens only
    ref = model.encode_reference(torch.randn(1, 4, 8, 8))
    with torch.no_grad():
        out_x = model(x, 400, reference=ref, attention_mask=mask)[0, 0]
        out_y = model(y, 400, reference=ref, attention_mask=mask)[0, 0]
        unmasked = model(y, 400, reference=ref)[0, 0]
    # Output rows 6..7 hold the bottom token row.
    torch.testing.assert_close(out_x[:, 6:], out_y[:, 6:], rtol=0, atol=1e-6)
    assert not torch.allclose(out_x[:, 6:], unmasked[:, 6:], atol=1e-4)
    assert not torch.allclose(out_x[:, 2:6], out_y[:, 2:6], atol=1e-4)


def test_attention_mask_per_frame():
    model = randomize(MegActorSigma(tiny_config(use_temporal=False))).eval()
    mask = torch.ones(1, 2, 16, 16, dtype=torch.bool)
    mask[0, 1, :, :8] = False
    x = torch.randn(1, 2, 4, 8, 8)
    with torch.no_grad():
        masked = model(x, 10, attention_mask=mask)
        plain = model(x, 10)
    torch.testing.assert_close(masked[:, 0], plain[:, 0])
    assert not torch.allclose(masked[:, 1], plain[:, 1])


def fresh_modules_pair(**changes):
    """A model without audio/temporal, and the same weights with freshly added modules."""
    base = randomize(MegActorSigma(tiny_config(use_audio=False, use_temporal=False, **changes))).eval()
    full = MegActorSigma(tiny_config(**changes)).eval()
    missing, unexpected = full.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all("audio_attn" in k or "temporal" in k for k in missing)
    return base, full


@pytest.mark.parametrize("modulated", [False, True])
def test_fresh_audio_and_temporal_modules_change_nothing(modulated):
    base, full = fresh_modules_pair(temporal_modulation=modulated)
    x = torch.randn(2, 3, 4, 8, 8)
    ref = base.encode_reference(torch.randn(2, 4, 8, 8))
    with torch.no_grad():
        expected = base(x, 200, reference=ref)
        got = full(x, 200, reference=ref, audio=torch.randn(2, 3, 5, 12), audio_scale=3.0)
    assert torch.equal(got, expected)


def test_audio_scale_and_frame_alignment():
    model = randomize(MegActorSigma(tiny_config(use_temporal=False))).eval()
    x = torch.randn(1, 3, 4, 8, 8)
    audio = torch.randn(1, 3, 5, 12)
    with torch.no_grad():
        silent = model(x, 100)
        zero_scale = model(x, 100, audio=audio, audio_scale=0.0)
        out = model(x, 100, audio=audio)
        changed = audio.clone()
        changed[:, 1] = torch.randn(5, 12)
        out2 = model(x, 100, audio=changed)
        per_sample = model(x.expand(2, -1, -1, -1, -1), 100, audio=audio.expand(2, -1, -1, -1),
                           audio_scale=torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(zero_scale, silent)
    assert not torch.allclose(out, silent)
    # Frame 1's audio moves frame 1 only.
    torch.testing.assert_close(out2[:, [0, 2]], out[:, [0, 2]])
    assert not torch.allclose(out2[:, 1], out[:, 1])
    torch.testing.assert_close(per_sample[0], silent[0])
    torch.testing.assert_close(per_sample[1], out[0])


@pytest.mark.parametrize("modulated", [False, True])
def test_temporal_modules_mix_frames_only_when_trained(modulated):
    base, full = fresh_modules_pair(temporal_modulation=modulated)
    x = torch.randn(1, 3, 4, 8, 8)
    y = x.clone()
    y[:, 0] += 1.0
    with torch.no_grad():
        assert torch.equal(full(x, 5)[:, 1:], full(y, 5)[:, 1:])
        randomize(full, seed=3)
        assert not torch.allclose(full(x, 5)[:, 1:], full(y, 5)[:, 1:])
    assert [i for i, b in enumerate(full.denoiser.blocks) if b.temporal is not None] == [1]


def test_modulated_temporal_module_is_gated_by_the_timestep():
    """Its shared timestep MLP starts at zero; a gate of -1 switches the module off at that timestep
    only, which a plain module cannot do."""
    model = randomize(MegActorSigma(tiny_config(temporal_modulation=True))).eval()
    shared = model.denoiser.temporal
    assert shared is not None and sorted(n for n, _ in shared.named_parameters()) == ["linear.bias", "linear.weight"]
    assert not MegActorSigma(tiny_config(temporal_modulation=True)).denoiser.temporal(torch.randn(2, 32)).any()
    module = model.denoiser.blocks[1].temporal
    tokens = torch.randn(3, 16, 32)
    with torch.no_grad():
        off = torch.zeros(3, 3, 32) - module.modulation[None]
        off[:, 2] -= 1  # shift 0, scale 0, gate -1
        torch.testing.assert_close(module(tokens, 3, off), tokens)
        assert not torch.allclose(module(tokens, 3, off + 0.5), tokens)
        x, y = torch.randn(1, 3, 4, 8, 8), torch.randn(1, 3, 4, 8, 8)
        y[:, 1:] = x[:, 1:]  # frame 0 differs: it reaches frames 1-2 only through the temporal modules
        for t in (5, 900):
            assert not torch.allclose(model(x, t)[:, 1:], model(y, t)[:, 1:])
    with pytest.raises(ValueError, match="temporal modulation"):
        module(tokens, 3)


def test_driven_channels_start_at_zero_and_learn():
    model = MegActorSigma(tiny_config())
    weight = model.denoiser.patch_embed.proj.weight
    assert torch.equal(weight[:, 4:], torch.zeros_like(weight[:, 4:]))
    assert weight[:, :4].abs().sum() > 0
    frames = torch.rand(1, 2, 3, 64, 64) * 2 - 1
    x = torch.randn(1, 2, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x, 10, driven=model.encode_driving(frames)), model(x, 10))
    loss = model(x, 10, driven=model.encode_driving(frames)).square().mean()
    loss.backward()
    assert weight.grad[:, 4:].abs().sum() > 0


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = randomize(MegActorSigma(tiny_config()))
    x = torch.randn(1, 2, 4, 8, 8)
    audio = torch.randn(1, 2, 5, 12)
    ref_latent = torch.randn(1, 4, 8, 8)

    def grads():
        model.zero_grad()
        model(x, 10, reference=model.encode_reference(ref_latent), audio=audio).square().mean().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = grads()
    model.enable_gradient_checkpointing()
    checkpointed = grads()
    assert len(plain) == len(checkpointed) > 0
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m(torch.randn(1, 1, 5, 8, 8), 1), "5 channels; this model expects 4"),
        (lambda m: m(torch.randn(1, 4, 8, 8), 1), "latents must be [batch, frames"),
        (lambda m: m(torch.randn(1, 1, 4, 7, 8), 1), "multiples of the patch size 2"),
        (lambda m: m(torch.randn(1, 2, 4, 8, 8), 1, audio=torch.randn(1, 2, 5, 10)), "expected [1, 2, tokens, 12]"),
        (lambda m: m(torch.randn(1, 2, 4, 8, 8), 1, audio=torch.randn(1, 3, 5, 12)), "expected [1, 2, tokens, 12]"),
        (lambda m: m(torch.randn(1, 1, 4, 8, 8), 1, driven=torch.randn(1, 1, 4, 4, 4)), "driven features have shape"),
        (lambda m: m(torch.randn(1, 1, 4, 8, 8), 1, attention_mask=torch.ones(15, 15, dtype=torch.bool)),
         "N = 16 tokens"),
        (lambda m: m(torch.randn(1, 1, 4, 8, 8), 1, attention_mask=torch.ones(16, 16)), "must be boolean"),
        (lambda m: m(torch.randn(1, 1, 4, 8, 8), 1, attention_mask=torch.zeros(16, 16, dtype=torch.bool)),
         "no key to attend"),
        (lambda m: m(torch.randn(2, 1, 4, 8, 8), torch.ones(3)), "3 values for a batch of 2"),
        (lambda m: m.encode_reference(torch.randn(1, 3, 8, 8)), "reference latents have 3 channels"),
        (lambda m: m.encode_driving(torch.randn(1, 1, 3, 60, 64)), "multiples of 8"),
        (lambda m: m(torch.randn(3, 1, 4, 8, 8), 1, reference=m.encode_reference(torch.randn(2, 4, 8, 8))),
         "reference of batch 2 for 3 videos does not fit a batch of 3"),
    ],
)
def test_clear_errors(tiny, call, message):
    with pytest.raises(ValueError) as info:
        call(tiny)
    assert message in str(info.value)


def test_audio_into_a_model_without_audio_attention():
    model = MegActorSigma(tiny_config(use_audio=False))
    with pytest.raises(ValueError, match="use_audio=False"):
        model(torch.randn(1, 1, 4, 8, 8), 1, audio=torch.randn(1, 1, 5, 12))


@pytest.mark.parametrize("changes, message", [
    (dict(hidden_size=36, num_heads=5), "not divisible by num_heads"),
    (dict(reference_blocks=(5,)), "outside 0..2"),
    (dict(driven_encoder_channels=(4, 8)), "3 widths"),
])
def test_invalid_configs(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**changes)


def test_compiled_blocks_give_the_same_prediction():
    """Each denoiser block compiles as one graph (no breaks) and predicts what eager mode does."""
    torch._dynamo.reset()
    model = randomize(MegActorSigma(tiny_config())).eval()
    x, audio = torch.randn(2, 3, 4, 8, 8), torch.randn(2, 3, 5, 12)
    mask = torch.ones(16, 16, dtype=torch.bool)
    mask[:4, 12:] = False
    with torch.no_grad():
        ref = model.encode_reference(torch.randn(1, 4, 8, 8))
        eager = model(x, 10, reference=ref, audio=audio, audio_scale=torch.tensor([1.0, 0.0]), attention_mask=mask)
        model.compile_blocks(backend="aot_eager", fullgraph=True)
        compiled = model(x, 10, reference=ref, audio=audio, audio_scale=torch.tensor([1.0, 0.0]),
                         attention_mask=mask)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    torch._dynamo.reset()
