"""``/_sandbox/``: what tests, demos and the benchmark use to read and steer the sandbox.

No auth: the sandbox runs on a developer's machine or in CI only.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from sandbox.clock import iso
from sandbox.custom_segments import ADDRESS_MODES
from sandbox.faults import parse_fault
from sandbox.serving import control_error, current_state, reply

control = Blueprint("sandbox", __name__, url_prefix="/_sandbox")


@control.get("/health")
def health() -> Response:
    """Liveness probe for scripts that start the sandbox."""
    return reply({"ok": True})


@control.get("/campaigns")
def list_campaigns() -> Response:
    """Every campaign created since the last reset, with the body received."""
    return reply(current_state().campaigns())


@control.get("/custom_segments")
def list_custom_segments() -> Response:
    """Every custom segment with its listed segment id and its members' guest ids."""
    with current_state().custom_segment_book() as (book, _seed, _now):
        return reply([c.control() for c in book.all()])


@control.get("/address_mode")
def get_address_mode() -> Response:
    """How a commit names a custom segment now: ``segment_id`` or ``custom_segment_id``."""
    return reply({"address_mode": current_state().address_mode})


@control.post("/address_mode")
def set_address_mode() -> Response:
    """Switch how a commit names a custom segment, until the next reset.

    Punchh is silent on it: ``segment_id`` lists custom segments in Get Segment List under a
    segment id of their own; ``custom_segment_id`` lists them not, and a commit's
    ``segment_id`` takes the custom segment's own id.
    """
    body = request.get_json(force=True, silent=True)
    mode = body.get("address_mode") if isinstance(body, dict) else None
    if mode not in ADDRESS_MODES:
        return control_error(f"address_mode must be one of {', '.join(ADDRESS_MODES)}")
    return reply({"address_mode": current_state().set_address_mode(str(mode))})


@control.get("/clock")
def get_clock() -> Response:
    """The sandbox's now, and how far it is ahead of real time."""
    state = current_state()
    return reply({"now": iso(state.now()), "offset_seconds": state.offset_seconds()})


@control.post("/clock")
def advance_clock() -> Response:
    """Advance the clock by ``advance_seconds``, or put it at ``offset_seconds`` ahead of real
    time (to restore what GET read); either way gift what became due."""
    body = request.get_json(force=True, silent=True)
    body = body if isinstance(body, dict) else {}
    given = [name for name in ("advance_seconds", "offset_seconds") if name in body]
    seconds = body.get(given[0]) if len(given) == 1 else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        # advance: gifts cannot be taken back. offset: a clock behind real time means nothing.
        return control_error("give one of advance_seconds or offset_seconds, a number >= 0")
    state = current_state()
    if given == ["advance_seconds"]:
        now = state.advance(float(seconds))
    else:
        now = state.set_offset(float(seconds))
    return reply({"now": iso(now), "offset_seconds": state.offset_seconds()})


@control.get("/guests")
def list_guests() -> Response:
    """Seeded guests, optionally only those in ``segment_id``."""
    guests = current_state().seed.guests
    raw = request.args.get("segment_id")
    if raw is not None:
        if not raw.isdigit():
            return control_error("segment_id must be an integer")
        guests = tuple(g for g in guests if int(raw) in g.segments)
    return reply([g.public() for g in guests])


@control.get("/guests/<int:guest_id>/rewards")
def guest_rewards(guest_id: int) -> Response:
    """The rewards gifted to one guest."""
    state = current_state()
    if not any(g.guest_id == guest_id for g in state.seed.guests):
        return control_error("unknown guest", 404)
    return reply(state.rewards(guest_id))


@control.get("/requests")
def list_requests() -> Response:
    """Counts per endpoint and status plus the last requests (no Authorization header)."""
    return reply(current_state().requests())


@control.get("/faults")
def list_faults() -> Response:
    """Faults still queued, per endpoint."""
    return reply(current_state().faults())


@control.post("/faults")
def add_faults() -> Response:
    """Queue a fault for the next ``count`` requests to one endpoint."""
    try:
        endpoint, fault, count = parse_fault(request.get_json(force=True, silent=True))
    except ValueError as error:
        return control_error(str(error))
    queued = current_state().add_faults(endpoint, fault, count)
    return reply({"endpoint": endpoint, "queued": queued})


@control.delete("/faults")
def clear_faults() -> Response:
    """Forget every queued fault."""
    current_state().clear_faults()
    return reply({"cleared": True})


@control.get("/paging")
def get_paging() -> Response:
    """The silent per_page cap the list endpoints apply now."""
    return reply({"max_per_page": current_state().max_per_page})


@control.post("/paging")
def set_paging() -> Response:
    """Cap every page at ``max_per_page`` items without saying so, until the next reset.

    Punchh documents no maximum ``per_page``; a real one that cuts pages short hides every
    later page from a client that stops at the first short page.
    """
    body = request.get_json(force=True, silent=True)
    size = body.get("max_per_page") if isinstance(body, dict) else None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        return control_error("max_per_page must be an integer >= 1")
    return reply({"max_per_page": current_state().cap_per_page(size)})


@control.get("/held")
def held() -> Response:
    """How many requests are blocked by a hold fault right now."""
    return reply({"held": current_state().gate.held()})


@control.post("/release")
def release() -> Response:
    """Let every held request go on."""
    return reply({"released": current_state().gate.release()})


@control.post("/reset")
def reset() -> Response:
    """Back to the seed: campaigns, rewards, custom segments, faults, clock offset, page cap,
    address mode and request log cleared (campaign and custom segment ids keep counting)."""
    current_state().reset()
    return reply({"reset": True})
