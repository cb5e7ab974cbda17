"""Small-count suppression, primary and secondary (ADR 0035)."""

from __future__ import annotations

from hypervision.opendata.suppression import suppress, suppressed_cells


def test_one_dimension_hides_the_next_smallest_with_a_lone_small_cell() -> None:
    rows = [{"line": "A", "count": 40}, {"line": "B", "count": 3}, {"line": "C", "count": 25}]
    out, hidden = suppress(rows, ["line"], ["count"])
    assert hidden == 2
    assert [(r["line"], r["count"], r["suppressed"]) for r in out] == [
        ("A", 40, False),
        ("B", None, True),
        ("C", None, True),  # else total - A - C would give B
    ]


def test_nothing_small_nothing_hidden_and_two_small_cells_protect_each_other() -> None:
    assert suppressed_cells([("A",), ("B",)], [11, 12], 11) == set()
    assert suppressed_cells([("A",), ("B",), ("C",)], [2, 5, 30], 11) == {0, 1}


def test_two_dimensions_every_row_and_column_is_protected() -> None:
    # lines x days; one small cell (L2, d1)
    keys = [("L1", "d1"), ("L1", "d2"), ("L2", "d1"), ("L2", "d2"), ("L3", "d1"), ("L3", "d2")]
    counts = [30, 40, 4, 50, 20, 60]
    hidden = suppressed_cells(keys, counts, 11)
    assert 2 in hidden
    for d in range(2):  # no line along either dimension has exactly one suppressed cell
        lines: dict[tuple[str, ...], list[int]] = {}
        for i, key in enumerate(keys):
            lines.setdefault(key[:d] + key[d + 1 :], []).append(i)
        for members in lines.values():
            assert sum(i in hidden for i in members) != 1, (d, members, hidden)
    # The smallest complements were chosen: (L3, d1) in the column, (L2, d2) in the row.
    assert hidden == {2, 3, 4, 5}


def test_other_measures_are_suppressed_with_the_count() -> None:
    rows = [{"g": "A", "count": 2, "sum_x": 7}, {"g": "B", "count": 1, "sum_x": 3}]
    out, _ = suppress(rows, ["g"], ["count", "sum_x"])
    assert all(r["sum_x"] is None and r["count"] is None for r in out)
