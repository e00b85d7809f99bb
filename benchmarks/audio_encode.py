"""Whisper-tiny-sized encoding speed and memory on this machine.

    python benchmarks/audio_encode.py

Random weights with Whisper-tiny's dimensions (80 mels, width 384, 6 heads, 4 layers): speed
does not depend on the weights. Each length runs in a fresh process so its peak memory (max
RSS) is its own. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, resource, sys, time, torch
from whisper.model import AudioEncoder
from megactor_core.audio import WhisperEncoder, encode_audio
seconds = float(sys.argv[1])
torch.manual_seed(0)
encoder = WhisperEncoder(AudioEncoder(80, 1500, 384, 6, 4), 80).eval()
wave = 0.05 * torch.randn(1, int(seconds * 16000))
encode_audio(encoder, wave[:, :16000], 16000, 25)  # warm-up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(3):
    start = time.perf_counter()
    feats = encode_audio(encoder, wave, 16000, 25)
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "best_s": min(times), "frames": feats.frames,
                  "peak_rss_mb": peak / 1024, "rss_before_mb": before / 1024}))
"""


def main() -> None:
    from benchmarks.results import machine, run_child, write_section

    rows = []
    for seconds in (10.0, 120.0):
        r = run_child(CHILD, seconds)
        rows.append(f"| {r['seconds']:.0f} s | {r['frames']} | {r['best_s']:.2f} s | "
                    f"{r['seconds'] / r['best_s']:.1f} | {r['peak_rss_mb']:.0f} MB |")
        print(rows[-1])
    write_section("audio_encode", "\n".join([
        "## Whisper audio encoding (`python benchmarks/audio_encode.py`)",
        "",
        f"Whisper-tiny dimensions, random weights, fp32 on CPU ({machine()}); best of 3, features",
        "for 25 fps video with the default context 4 (9 positions) and all 5 encoder states. Audio",
        "up to 30 s is one Whisper window (Whisper always encodes 30 s), longer audio is windows",
        "every 20 s.",
        "",
        "| audio | frames | time | audio seconds per second | peak RSS of the process |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
    ]))


if __name__ == "__main__":
    main()
