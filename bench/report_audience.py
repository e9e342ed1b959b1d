"""Audience mode's rows of the table, and the figures a run must have of it (issue 13)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.plan import TARGET_AUDIENCE_BYTES_PER_WAITING_RECIPIENT, TARGET_AUDIENCE_COMMIT_LAG_S

#: The sandbox's endpoint names, shortened for the table, in the order a send calls them.
_ENDPOINTS = {
    "add_users": "add_users",
    "create_custom_segment": "create",
    "custom_segments": "cs list",
    "segments": "segments",
    "redeemables": "redeemables",
    "campaigns": "commit",
}


def audience_rows(res: dict[str, Any], row: Callable[..., None]) -> None:
    """Audience mode's sends and its identifiers' bytes, next to their targets."""
    waiting = res.get("memory", {}).get("audience")
    if waiting:
        u, e = waiting["user_id"], waiting["email"]
        row(
            "audience: Redis bytes per recipient waiting for its batch (user id / email)",
            f"{u['bytes_per_recipient']:.1f} / {e['bytes_per_recipient']:.1f} B",
            f"≤ {TARGET_AUDIENCE_BYTES_PER_WAITING_RECIPIENT} B",
            max(u["bytes_per_recipient"], e["bytes_per_recipient"])
            <= TARGET_AUDIENCE_BYTES_PER_WAITING_RECIPIENT,
        )
        row(
            f"  identifiers of {u['mean_identifier_chars']:.1f} / "
            f"{e['mean_identifier_chars']:.1f} chars; used_memory per recipient",
            f"{u['used_memory_per_recipient']:.1f} / {e['used_memory_per_recipient']:.1f} B",
        )
    for a in res.get("audience_sends", []):
        n = f"audience send of {a['recipients']:,}"
        calls = dict(a["punchh_calls"])
        row(
            f"{n}: Punchh calls",
            str(a["punchh_calls_total"]),
            f"≤ {a['punchh_calls_bound']} (⌈N/1000⌉+4)",
            a["punchh_calls_total"] <= a["punchh_calls_bound"],
        )
        names = [e for e in _ENDPOINTS if e in calls] + sorted(set(calls) - set(_ENDPOINTS))
        row(
            "  " + " / ".join(_ENDPOINTS.get(e) or e for e in names),
            " / ".join(str(calls[e]) for e in names),
        )
        row(
            f"{n}: commit - last recipient - quiet gap ({a['quiet_seconds']:g} s)",
            ("re-queued by the ledger sweep, " if a.get("requeued_by_sweep") else "")
            + f"{a['commit_lag_s']:.2f} s",
            f"≤ {TARGET_AUDIENCE_COMMIT_LAG_S:g} s",
            a["commit_lag_s"] <= TARGET_AUDIENCE_COMMIT_LAG_S,
        )
        left = len(a["audience_keys_left"])
        row(
            f"{n}: left once committed: keys / bytes / sample found",
            f"{left} / {a['audience_bytes_left']} B / {a['identifiers_found_in_redis']} "
            f"of {a['identifiers_sampled']}",
            "0 B",
            left == 0 and a["identifiers_found_in_redis"] == 0,
        )
        row(
            f"{n}: counted / delivered (req/s; most waiting at once)",
            f"{a['recipients_counted']:,} / {a['delivered']:,} "
            f"({a['recipients_per_second'] or 0:,.0f}/s; {a['most_waiting_at_once']:,})",
            "all",
            a["delivered"] == a["recipients_counted"] == a["recipients"],
        )


def audience_figures(res: dict[str, Any]) -> list[str]:
    """Paths of the audience figures in the results document (bench.report checks them)."""
    need = [
        "throughput.audience.accepted_not_delivered",
        "memory.audience.user_id.bytes_per_recipient",
        "memory.audience.email.bytes_per_recipient",
    ]
    sends = res.get("audience_sends") or [{}]
    need += [
        f"audience_sends.{i}.{name}"
        for i in range(len(sends))
        for name in (
            "punchh_calls_total",
            "punchh_calls_bound",
            "commit_lag_s",
            "audience_bytes_left",
            "identifiers_found_in_redis",
            "delivered",
        )
    ]
    return need
