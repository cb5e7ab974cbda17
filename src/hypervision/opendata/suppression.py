"""Small-count suppression of an aggregated table (ADR 0035).

Primary: a cell (one group) whose count is under the threshold has its count and every other
measure suppressed (None) and is flagged. Secondary: along every dimension, the cells that
differ only in that dimension form a line whose total anyone could compute from another
publication (a margin); a line with exactly one suppressed cell would give it away by
subtraction, so its next smallest cell is suppressed too — repeated until no line has exactly
one suppressed cell. With one dimension the only line is the whole table (its grand total).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_THRESHOLD = 11
FLAG = "suppressed"


def _lines(keys: Sequence[tuple[Any, ...]], dims: int) -> list[list[int]]:
    """Indexes of the cells of every line: for each dimension, cells equal on the others."""
    lines: list[list[int]] = []
    for d in range(dims):
        by_rest: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            by_rest[key[:d] + key[d + 1 :]].append(i)
        lines.extend(members for members in by_rest.values() if len(members) > 1)
    return lines


def suppressed_cells(
    keys: Sequence[tuple[Any, ...]], counts: Sequence[int], threshold: int
) -> set[int]:
    """Indexes of the cells to suppress (primary then secondary)."""
    hidden = {i for i, c in enumerate(counts) if c < threshold}
    if not keys:
        return hidden
    lines = _lines(keys, len(keys[0]))
    changed = True
    while changed:
        changed = False
        for members in lines:
            inside = [i for i in members if i in hidden]
            if len(inside) != 1:
                continue
            shown = [i for i in members if i not in hidden]
            if shown:  # the next smallest cell of the line
                hidden.add(min(shown, key=lambda i: (counts[i], i)))
                changed = True
    return hidden


def suppress(
    rows: Sequence[Mapping[str, Any]],
    group_by: Sequence[str],
    measures: Sequence[str],
    threshold: int = DEFAULT_THRESHOLD,
    count: str = "count",
) -> tuple[list[dict[str, Any]], int]:
    """``rows`` (one per group, with ``count``) with the suppressed cells' measures set to
    None and every row flagged (``suppressed``); the number of cells suppressed."""
    keys = [tuple(row[g] for g in group_by) for row in rows]
    counts = [int(row[count] or 0) for row in rows]
    hidden = suppressed_cells(keys, counts, threshold)
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        cell = dict(row)
        if i in hidden:
            for name in measures:
                cell[name] = None
        cell[FLAG] = i in hidden
        out.append(cell)
    return out, len(hidden)
