"""`/status`: a read-only HTML page of recent sends, behind the API token.

A browser can open it: the API token is accepted as a Bearer token or as the password of
HTTP Basic (any user name), and a 401 asks for Basic credentials. Everything shown is
escaped by Jinja's autoescaping; the page has no scripts and a CSP that forbids them.
"""

from __future__ import annotations

import re
import shlex
import time
from typing import Any

from flask import Blueprint, Response, render_template, request

from connector.operator_auth import require_operator
from ledger import queries
from ledger.census import count_states
from ledger.states import State
from wiring.errors import NotFound
from wiring.services import current_services as services

bp = Blueprint("status", __name__)

#: Rows shown by default, and at most.
DEFAULT_ROWS = 100
MAX_ROWS = 500
#: CSS class per state (only known states ever reach the class attribute).
STATE_CLASSES = {state.value: f"st-{state.value}" for state in State}
#: Seconds between the page's own refreshes.
REFRESH_SECONDS = 30


def _row(dist: dict[str, Any]) -> dict[str, Any]:
    dist["state_class"] = STATE_CLASSES.get(dist["state"], "st-other")
    return dist


def id_parts(distribution_id: str) -> list[str]:
    """An id cut after each ':' — the page lets a long id wrap there and nowhere else."""
    return re.findall(r"[^:]*:|[^:]+$", distribution_id) or [distribution_id]


def _page(html: str, status: int = 200) -> Response:
    """An operator page with its headers: no caching, no scripts, no framing."""
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/status")
def status_page() -> Response:
    """Recent distributions with state, recipients, Punchh campaign, start time, last error."""
    require_operator()
    svc = services()
    known = {s.value for s in State}
    wanted = [
        s.strip()
        for value in request.args.getlist("state")
        for s in value.split(",")
        if s.strip() in known
    ]
    source = request.args.get("source", "").strip() or None
    raw_limit = request.args.get("limit", "")
    limit = DEFAULT_ROWS
    if raw_limit.isdigit() and int(raw_limit) > 0:
        limit = min(int(raw_limit), MAX_ROWS)
    rows = [
        _row(dist.as_dict())
        for dist in svc.ledger.recent(states=wanted, source=source, limit=limit)
    ]
    html = render_template(
        "status.html",
        rows=rows,
        counts=count_states(svc.ledger),
        state_classes=STATE_CLASSES,
        filter_states=wanted,
        source=source,
        limit=limit,
        queued_jobs=svc.queue.count,
        refresh=REFRESH_SECONDS,
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        id_parts=id_parts,
    )
    return _page(html)


#: Chart size in SVG units; the page scales it to its column.
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 480, 120, 4
#: The record's sampled running recipient count, by bucket start minute (the intake step).
PER_MINUTE = "per_minute:"


def recipient_series(fields: dict[str, str]) -> list[tuple[float, int]]:
    """(bucket start, recipients counted by then) from the record's sampled running count.

    The intake samples the count at most once a second into the bucket of the moment, so the
    last sample may trail the total by the requests of that second: the total ends the series.
    """
    buckets: dict[int, int] = {}
    for name, value in fields.items():
        if name.startswith(PER_MINUTE) and name[len(PER_MINUTE):].isdigit():
            minute = int(name[len(PER_MINUTE):])
            buckets[minute] = max(buckets.get(minute, 0), int(value))
    if not buckets:
        return []
    series, total = [], 0
    for minute in sorted(buckets):
        total = max(total, buckets[minute])
        series.append((minute * 60.0, total))
    recipients = int(fields.get("recipients", 0) or 0)
    if recipients > total:
        series[-1] = (series[-1][0], recipients)
    return series


def chart_points(series: list[tuple[float, int]]) -> str:
    """An SVG polyline's points for a cumulative series (a step up at each minute)."""
    if not series:
        return ""
    start, end = series[0][0], series[-1][0] + 60
    top = max(count for _, count in series) or 1
    width, height = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD

    def xy(moment: float, count: int) -> str:
        x = CHART_PAD + width * (moment - start) / (end - start)
        y = CHART_PAD + height * (1 - count / top)
        return f"{x:.1f},{y:.1f}"

    points, before = [xy(start, 0)], 0
    for moment, count in series:
        points += [xy(moment, before), xy(moment, count)]
        before = count
    points.append(xy(end, before))
    return " ".join(points)


def next_actions(dist: dict[str, Any]) -> list[tuple[str, str]]:
    """(what it does, the CLI command) for what an operator may do next with this send."""
    ref = shlex.quote(dist["distribution_id"])
    state = dist["state"]
    actions: list[tuple[str, str]] = []
    if state == State.FAILED:
        actions.append(("commit it again, once the cause is fixed",
                        f"punchh-connector retry {ref}"))
    elif state == State.REJECTED:
        actions.append(("after fixing what Punchh refused (or send again from the platform)",
                        f"punchh-connector retry {ref}"))
    elif state == State.HELD:
        actions += [("it is a real send: commit it", f"punchh-connector release {ref}"),
                    ("it is not: drop it", f"punchh-connector cancel {ref}")]
    elif state == State.UNKNOWN:
        actions += [("Punchh has a campaign for it (external source id = this id)",
                     f"punchh-connector resolve {ref} --campaign-id <N>"),
                    ("Punchh has none: commit it", f"punchh-connector resolve {ref} --not-created")]
    if dist.get("undoable"):
        actions.append((f"undo the last {dist['undoable']['action']}",
                        f"punchh-connector undo {ref}"))
    actions.append(("follow it from a terminal", f"punchh-connector show {ref}"))
    return actions


@bp.get("/status/send/<path:distribution_id>")
def send_page(distribution_id: str) -> Response:
    """One send: state timeline, recipients over time, Punchh campaign, last error, next step."""
    require_operator()
    svc = services()
    try:
        dist = queries.show(svc.ledger, distribution_id)
    except NotFound as exc:
        html = render_template("send.html", missing=exc.message, id_parts=id_parts,
                               distribution_id=distribution_id)
        return _page(html, 404)
    record = svc.ledger.get(distribution_id)
    series = recipient_series(record.fields if record is not None else {})
    html = render_template(
        "send.html",
        missing=None,
        dist=dist,
        state_class=STATE_CLASSES.get(dist["state"], "st-other"),
        state_classes=STATE_CLASSES,
        events=dist["events"],
        series=series,
        points=chart_points(series),
        chart=(CHART_WIDTH, CHART_HEIGHT),
        first_minute=time.strftime("%H:%M", time.gmtime(series[0][0])) if series else "",
        last_minute=time.strftime("%H:%M", time.gmtime(series[-1][0] + 60)) if series else "",
        actions=next_actions(dist),
        id_parts=id_parts,
        distribution_id=distribution_id,
    )
    return _page(html)
