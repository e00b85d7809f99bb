"""Helpers for mapping the parameter names of other code bases onto ours."""

from __future__ import annotations

from collections.abc import Mapping


def rename_prefix(key: str, table: Mapping[str, str]) -> str | None:
    """Replace the first ``table`` prefix that ends at a dot boundary of ``key``; None if none does."""
    for src, dst in table.items():
        if key == src or key.startswith(src + "."):
            return dst + key[len(src):]
    return None
