"""The one HTTP client for Punchh's Headless Offers endpoints; knows nothing of the ledger."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from punchh.errors import (
    PunchhAmbiguous,
    PunchhAuthError,
    PunchhConnectError,
    PunchhError,
    PunchhRateLimited,
    PunchhRejected,
    PunchhServerError,
    PunchhUnexpected,
)

Kind = Literal["segments", "redeemables"]

SEGMENTS_PATH = "/api2/dashboard/segments"
REDEEMABLES_PATH = "/api2/dashboard/redeemables"
CAMPAIGNS_PATH = "/api2/dashboard/campaigns"
LIST_PATHS: dict[str, str] = {"segments": SEGMENTS_PATH, "redeemables": REDEEMABLES_PATH}
#: The field that identifies an item of each list.
ID_FIELDS: dict[str, str] = {"segments": "segment_id", "redeemables": "redeemable_uuid"}
ENDPOINT_NAMES: dict[str, str] = {
    SEGMENTS_PATH: "segments",
    REDEEMABLES_PATH: "redeemables",
    CAMPAIGNS_PATH: "campaigns",
}

#: Called after every request with (endpoint, status or error name, seconds) — for metrics.
Observer = Callable[[str, str, float], None]


class Guard(Protocol):
    """Keeps a refused key away from Punchh (ledger.lockout is the one in use)."""

    def check(self) -> None:
        """Raise PunchhLockedOut instead of letting a request leave."""

    def refused(self, exc: PunchhAuthError) -> None:
        """Punchh refused the key: hold every later request back."""


#: Statuses whose body is the answer, unless a call expects others (a create answers 201).
OK_STATUSES = frozenset({200})
#: Statuses after which Punchh provably created nothing.
NOT_ACTED_STATUSES = frozenset({500, 502, 503})
#: Statuses that a retry of the same request cannot fix.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 422})
#: Most pages read from one list: Punchh documents no total, so a list that never ends is an error.
MAX_PAGES = 200


def format_start_time(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, the one form Punchh accepts everywhere."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds, from either its delta-seconds or its HTTP-date form."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def error_message(body: Any) -> tuple[str, tuple[str, ...]]:
    """Punchh's words from any of its error shapes (errors as object, string or list)."""
    if not isinstance(body, dict):
        return (str(body)[:300] if body else "", ())
    parts: list[str] = []
    codes: list[str] = []
    for key in ("error", "no_permission_error", "message"):
        if isinstance(body.get(key), str):
            parts.append(body[key])
            codes.append(key)
    errors = body.get("errors")
    if isinstance(errors, str):
        parts.append(errors)
    elif isinstance(errors, list):
        parts.extend(str(e) for e in errors)
    elif isinstance(errors, dict):
        for code, msg in errors.items():
            codes.append(str(code))
            text = "; ".join(map(str, msg)) if isinstance(msg, list) else str(msg)
            parts.append(f"{code}: {text}")
    return ("; ".join(parts)[:500], tuple(codes))


class PunchhClient:
    """Get Segment List, Get Redeemable List and Commit Redeemable Distribution over httpx."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        user_agent: str,
        *,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        observer: Observer | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.observer = observer
        self.guard = guard
        self._http = httpx.Client(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": user_agent,
                "Accept": "application/json",
            },
            timeout=timeout or httpx.Timeout(20.0, connect=5.0),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def __enter__(self) -> PunchhClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- lists ----------------------------------------------------------------------------
    def list_page(
        self, kind: Kind, *, query: str = "", page: int = 1, per_page: int = 50
    ) -> list[dict[str, Any]]:
        """One page of segments or redeemables (a bare JSON array)."""
        params: dict[str, str | int] = {"page": page, "per_page": per_page}
        if query:
            params["query"] = query
        body = self._send("GET", LIST_PATHS[kind], params=params)
        if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
            raise PunchhUnexpected(f"Punchh {kind} list was not a JSON array of objects")
        return body

    def list_all(self, kind: Kind, *, query: str = "", per_page: int = 50) -> list[dict[str, Any]]:
        """Every page, until one adds no item not seen before (Punchh gives no total)."""
        # A page shorter than per_page does not mean the end: Punchh documents no maximum
        # per_page, and one that silently caps it answers short pages while more follow —
        # stopping there would hide later names (not found) and later duplicates (a wrong
        # segment chosen instead of an ambiguity). An empty page, or one that repeats what
        # came before (a Punchh ignoring `page`), is the only reliable end.
        ident = ID_FIELDS[kind]
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            batch = self.list_page(kind, query=query, page=page, per_page=per_page)
            fresh = [i for i in batch if json.dumps(i.get(ident, i), sort_keys=True) not in seen]
            if not fresh:
                return items
            seen.update(json.dumps(i.get(ident, i), sort_keys=True) for i in fresh)
            items.extend(fresh)
        # Returning what we have would make "not found" and "unique" answers unreliable.
        raise PunchhUnexpected(
            f"Punchh's {kind} list did not end within {MAX_PAGES} pages of {per_page}"
        )

    # --- commit ---------------------------------------------------------------------------
    def commit(
        self,
        *,
        redeemable_uuid: str,
        segment_id: int,
        name: str,
        start_time: datetime,
        external_campaign_id: str,
    ) -> dict[str, Any]:
        """POST one mass-gifting campaign. Not idempotent at Punchh: call once per send."""
        payload = {
            "redeemable_uuid": redeemable_uuid,
            "segment_id": segment_id,
            "category": "gift_redeemable",
            "campaign_type": "mass_gifting",
            "name": name,
            "start_time": format_start_time(start_time),
            "external_campaign_id": external_campaign_id,
        }
        body = self._send("POST", CAMPAIGNS_PATH, json=payload)
        if not isinstance(body, dict) or "campaign_id" not in body:
            # A 200 we cannot read may still have created the campaign.
            raise PunchhAmbiguous("Punchh answered 200 without a campaign_id", status=200)
        return body

    # --- transport ------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        expect: frozenset[int] = OK_STATUSES,
    ) -> Any:
        """One request; every failure mapped onto the error tree by what Punchh may have done.

        ``expect``: the statuses whose body is the answer (the custom-segment calls answer
        201 and 202); any other status is mapped as ever.
        """
        if self.guard is not None:
            self.guard.check()  # here, so that no caller can forget: nothing leaves when locked
        started = time.perf_counter()
        outcome = "error"
        try:
            response = self._http.request(method, path, params=params, json=json)
            outcome = str(response.status_code)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            outcome = "connect_error"
            raise PunchhConnectError(f"could not connect to Punchh: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            # Read timeouts, resets and protocol errors happen after the request left us.
            outcome = "no_answer"
            raise PunchhAmbiguous(
                f"no answer from Punchh after sending ({type(exc).__name__})"
            ) from exc
        finally:
            if self.observer is not None:
                self.observer(
                    ENDPOINT_NAMES.get(path, path), outcome, time.perf_counter() - started
                )
        try:
            return self._interpret(response, expect)
        except PunchhAuthError as exc:
            if self.guard is not None:
                self.guard.refused(exc)
            raise

    @staticmethod
    def _interpret(response: httpx.Response, expect: frozenset[int] = OK_STATUSES) -> Any:
        """Body of an expected status (200), or the right exception for any other status."""
        status = response.status_code
        try:
            body: Any = response.json()
        except (ValueError, RecursionError):
            # Nested deeper than Python parses: as unreadable as any other non-JSON answer.
            body = response.text
        if status in expect:
            if isinstance(body, str):
                raise PunchhAmbiguous(
                    f"Punchh answered {status} with a body that is not JSON", status=status
                )
            return body
        message, codes = error_message(body)
        summary = f"Punchh answered {status}" + (f": {message}" if message else "")
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise PunchhRateLimited(summary, retry_after=retry_after)
        if status in NOT_ACTED_STATUSES:
            raise PunchhServerError(summary, status=status)
        if status in (401, 403):
            raise PunchhAuthError(summary, status=status, codes=codes)
        if status in PERMANENT_STATUSES:
            raise PunchhRejected(summary, status=status, codes=codes)
        if status == 504:
            raise PunchhAmbiguous(summary, status=status)
        raise PunchhUnexpected(summary, status=status)


__all__ = ["Guard", "PunchhClient", "PunchhError", "format_start_time", "parse_retry_after"]
