"""The reliability summary table: each fault scenario records its figures, printed at the end."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One scenario's figures."""

    scenario: str
    requests: int
    faults: int
    campaigns_expected: int
    campaigns_created: int
    requests_lost: int


ROWS: list[Row] = []


def record(
    scenario: str,
    *,
    requests: int,
    faults: int,
    expected: int,
    created: int,
    lost: int,
) -> None:
    """Add a scenario's figures to the table."""
    ROWS.append(Row(scenario, requests, faults, expected, created, lost))


def render() -> str:
    """The table as text."""
    headers = ("scenario", "requests", "faults", "campaigns expected", "created", "lost")
    rows = [
        (r.scenario, str(r.requests), str(r.faults), str(r.campaigns_expected),
         str(r.campaigns_created), str(r.requests_lost))
        for r in ROWS
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    dup = sum(max(0, r.campaigns_created - r.campaigns_expected) for r in ROWS)
    lost = sum(r.requests_lost for r in ROWS)
    out.append(f"duplicate campaigns: {dup}   accepted requests lost: {lost}")
    return "\n".join(out)
