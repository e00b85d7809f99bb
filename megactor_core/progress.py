"""Progress hooks: the library's ``progress(done, total)`` callbacks, and a tqdm bar for the command line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

# Called by long work as it advances (``done`` of ``total`` units); raising in it cancels the work.
Progress = Callable[[int, int], None]


@contextmanager
def progress_bar(desc: str, unit: str, total: int | None = None) -> Iterator[Progress]:
    """A ``progress(done, total)`` callback drawing a tqdm bar that closes with the block."""
    with tqdm(desc=desc, unit=unit, total=total) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress
