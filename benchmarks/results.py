"""Each benchmark owns one section of RESULTS.md, replaced whenever it reruns."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from megactor_core.machine import describe as machine  # noqa: F401  (re-exported for the benchmark scripts)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is written by the script it names; rerun it to refresh.\n"


def best_of(fn: Callable[[], object], repeats: int = 3, *, warm_up: bool = False) -> float:
    """The shortest of ``repeats`` timed calls of ``fn`` (after one untimed call with ``warm_up``), seconds."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def write_section(name: str, body: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    section = f"<!-- {name} -->\n{body.strip()}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def run_child(code: str, *args: object) -> dict:
    """Run ``code`` in a fresh Python (so its peak memory is its own) and parse the JSON line it prints last."""
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_profiles(calls: dict[str, Callable[[], object]]) -> None:
    """Self CPU time per operator of each call (after a warm-up), to find where the time goes."""
    from torch.profiler import ProfilerActivity, profile

    for name, call in calls.items():
        call()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            call()
        print(f"== {name}\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
