"""What every command line of the project does with its outcome: one place for exit codes and messages."""

from __future__ import annotations

import sys
from collections.abc import Callable

BAD_INPUT = 2  # argparse's code for bad arguments; ours for bad inputs too
INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C


def run_command(work: Callable[[], object], *, interrupted: str | None = None,
                errors: tuple[type[Exception], ...] = (ValueError, FileNotFoundError)) -> int:
    """Run a command's ``work`` and give its exit status: 0 with what it returns printed; 2 with
    ``error: …`` for a bad input (``errors``: messages written for the user, no traceback); 130 on
    Ctrl-C, with ``interrupted`` printed when given (what was kept or not written)."""
    try:
        result = work()
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        if interrupted:
            print(interrupted, file=sys.stderr)
        return INTERRUPTED
    print(result)
    return 0
