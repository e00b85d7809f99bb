"""The example workflows load (every node, input, widget and link is valid) and run on tiny models."""

from __future__ import annotations

import pytest
import torch

from tests.comfy_stubs import VAEStub, load_plugin, plugin_nodes
from tests.tiny_models import tiny_model_folders, tiny_vae
from tests.workflow_graph import CORE_NODES, UI_ONLY, WORKFLOWS, load, node_signature, to_api, widget_values

NAMES = [p.stem for p in WORKFLOWS]
PHOTO = (96, 160)  # a landscape photo (height, width): the video comes out at its size
# Everyday inputs: (speech seconds, driving clip seconds, driving clip fps). The model runs at 25 fps.
SCENARIOS = {"speech longer than a 30 fps clip": (2.6, 2.0, 30.0), "clip longer than the speech": (1.0, 3.0, 30.0)}
USES = {"megactor_audio_driven": {"speech"}, "megactor_video_driven": {"clip"}}


def expected_frames(name: str, speech: float, clip: float) -> int:
    """The longer control's length at 25 fps (each example uses speech, the clip or both)."""
    uses = USES.get(name, {"speech", "clip"})
    return max(round(seconds * 25) for kind, seconds in (("speech", speech), ("clip", clip)) if kind in uses)


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    return load_plugin(monkeypatch, tiny_model_folders(tmp_path / "models", "megactor_sigma.safetensors"))


def test_the_five_examples_exist():
    assert NAMES == ["megactor_amplitude_comparison", "megactor_audio_driven", "megactor_mixed",
                     "megactor_sd15_release", "megactor_video_driven"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_workflow_is_valid(plugin, path):
    workflow = load(path)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    ours = plugin_nodes(plugin)
    assert workflow["last_node_id"] == max(nodes)
    assert workflow["last_link_id"] == max(link[0] for link in workflow["links"])
    for node in workflow["nodes"]:
        if node["type"] in UI_ONLY:
            assert "models/megactor/" in node["widgets_values"][0]  # the note lists the model files
            continue
        assert node["type"] in ours or node["type"] in CORE_NODES, node["type"]
        link_inputs, widgets, extra, outputs = node_signature(node["type"], ours)
        assert len(node["widgets_values"]) == len(widgets) + extra, node["type"]
        assert [o["type"] for o in node["outputs"]] == outputs
        for slot in node["inputs"]:
            assert slot["name"] in link_inputs or slot.get("widget", {}).get("name") in widgets, slot
        if node["type"] in ours:
            check_widget_values(ours[node["type"]], widget_values(node, widgets))
    for link_id, source, source_slot, target, target_slot, kind in workflow["links"]:
        assert nodes[source]["outputs"][source_slot]["type"] == kind
        assert link_id in nodes[source]["outputs"][source_slot]["links"]
        assert nodes[target]["inputs"][target_slot]["link"] == link_id
        assert nodes[target]["inputs"][target_slot]["type"] == kind
    required = {
        name for node in workflow["nodes"] if node["type"] in ours
        for name in ours[node["type"]].INPUT_TYPES()["required"]
    }
    assert required  # sanity: our nodes are in every example
    for node in workflow["nodes"]:  # every required link input of our nodes is connected
        if node["type"] in ours:
            link_inputs, _, _, _ = node_signature(node["type"], ours)
            needed = [n for n in link_inputs if n in ours[node["type"]].INPUT_TYPES()["required"]]
            connected = {s["name"] for s in node["inputs"] if s["link"] is not None}
            assert set(needed) <= connected, (node["type"], needed, connected)


def check_widget_values(cls, values: dict) -> None:
    spec = {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}
    for name, value in values.items():
        kind, options = spec[name][0], (spec[name][1] if len(spec[name]) > 1 else {})
        if kind in ("INT", "FLOAT"):
            assert options.get("min", value) <= value <= options.get("max", value), (name, value)
        elif kind == "BOOLEAN":
            assert isinstance(value, bool)
        elif kind == "COMBO" and name not in ("checkpoint", "model", "detector", "pose_model"):
            assert value in options["options"], (name, value)  # model file lists depend on the user's folders


def core_stub(node_type: str, inputs: dict, speech: float = 0.4, clip: float = 0.48, clip_fps: float = 25.0):
    """Small stand-ins for ComfyUI's core nodes: a landscape photo, ``speech`` seconds of audio,
    a ``clip`` seconds video at ``clip_fps``."""
    g = torch.Generator().manual_seed(0)
    if node_type == "LoadImage":
        return torch.rand(1, *PHOTO, 3, generator=g), torch.zeros(1, *PHOTO)
    if node_type == "LoadAudio":
        return ({"waveform": 0.05 * torch.randn(1, 2, round(speech * 16000), generator=g), "sample_rate": 16000},)
    if node_type == "LoadVideo":
        return ({"images": torch.rand(round(clip * clip_fps), 64, 48, 3, generator=g), "fps": clip_fps,
                 "audio": {"waveform": torch.zeros(1, 1, round(clip * 16000)), "sample_rate": 16000}},)
    if node_type == "GetVideoComponents":
        video = inputs["video"]
        return video["images"], video["audio"], video["fps"]
    if node_type == "VAELoader":
        return (VAEStub(tiny_vae()),)
    if node_type == "VAEDecode":
        return (inputs["vae"].decode(inputs["samples"]["samples"]),)
    if node_type == "CreateVideo":
        return ({"images": inputs["images"], "fps": inputs["fps"], "audio": inputs.get("audio")},)
    if node_type == "SaveVideo":
        return ()
    raise AssertionError(f"no stand-in for core node {node_type}")


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_workflow_runs_on_tiny_models(plugin, path, scenario):
    """Execute the example's graph in order, as shipped: our nodes for real, core nodes as stand-ins."""
    speech, clip, clip_fps = SCENARIOS[scenario]
    ours = plugin_nodes(plugin)
    prompt = to_api(load(path), ours)
    results: dict[str, tuple] = {}
    saved = []

    def run(node_id: str) -> tuple:
        if node_id not in results:
            node = prompt[node_id]
            inputs = {k: run(v[0])[v[1]] if isinstance(v, list) else v for k, v in node["inputs"].items()}
            if node["class_type"] == "MegActorSampler":  # a few fast steps on the tiny model
                inputs.update(steps=2, window=8, overlap=1)
            if node["class_type"] == "MegActorCropFace":  # the tiny model's 64x64 instead of 512x512
                inputs.update(size=64)
            if node["class_type"] in ours:
                results[node_id] = ours[node["class_type"]].EXECUTE_NORMALIZED(**inputs)
            else:
                results[node_id] = core_stub(node["class_type"], inputs, speech, clip, clip_fps)
                if node["class_type"] == "SaveVideo":
                    saved.append(inputs["video"])
        return results[node_id]

    for node_id in prompt:
        run(node_id)
    assert saved, "the example saves no video"
    for video in saved:
        assert tuple(video["images"].shape) == (expected_frames(path.stem, speech, clip), *PHOTO, 3)
        assert torch.isfinite(video["images"]).all() and video["fps"] == 25.0
