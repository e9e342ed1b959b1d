"""The alert job: one Slack-compatible message when a distribution needs a human.

At most one message per entry into a state: a mark in the ledger (SET NX), kept as long as
the record, guards against a job run twice (RQ is at-least-once) and against anything
enqueueing it again.
An entry is told apart from the last by the operator action before it (`admin_last`, written
in the same compare-and-set as the action): a record leaves failed, unknown, rejected or held
only through an operator, so when it comes back after a `retry`, `resolve` or `release` it is
a new entry and the operator hears about it again, once.
The message names the send (source, campaign, send key), the marketer's segment and
redeemable names, the reason, and the command that acts on it. There is never any guest data
in it: the ledger holds none.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ledger.record import Distribution, last_action
from wiring.services import Services
from workers import context

log = logging.getLogger("connector.alerts")

#: Alert webhooks answer fast; a slow one must not hold a worker.
ALERT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

#: What an operator does about each state.
ACTIONS: dict[str, str] = {
    "unknown": (
        "The POST may have reached Punchh. Look in Punchh for a campaign with external "
        "campaign id `{id}`, then run `punchh-connector resolve {id} --campaign-id N` if it "
        "exists, or `punchh-connector resolve {id} --not-created` to commit it."
    ),
    "failed": (
        "Transient errors outlasted the retry budget. Fix the cause, then run "
        "`punchh-connector retry {id}`."
    ),
    "rejected": (
        "Punchh (or the connector) refused it. Fix the names or the offer, then run "
        "`punchh-connector retry {id}`, or leave it."
    ),
    "held": (
        "The fan-out guard stopped it: too many distinct send keys for one campaign. Check "
        "the template's send key, then `punchh-connector release {id}` or "
        "`punchh-connector cancel {id}`."
    ),
}
EMOJI = {
    "unknown": ":question:",
    "failed": ":x:",
    "rejected": ":no_entry:",
    "held": ":pause_button:",
}


class _HideAlertUrl(logging.Filter):
    """httpx logs each request's URL at INFO; an incoming-webhook URL is a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                "<alert webhook>" if str(arg) in _SECRET_URLS else arg for arg in record.args
            )
        return True


_SECRET_URLS: set[str] = set()
_HIDER = _HideAlertUrl()


def _hide(url: str) -> None:
    _SECRET_URLS.update({url, str(httpx.URL(url))})  # as configured, and as httpx prints it
    logger = logging.getLogger("httpx")
    if _HIDER not in logger.filters:
        logger.addFilter(_HIDER)


def escape(text: str) -> str:
    """Slack's three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(
    dist: Distribution, state: str, after: dict[str, Any] | None = None
) -> dict[str, str]:
    """The Slack-compatible body: {"text": ...}, mrkdwn; `after`: the operator action the
    record came back after, if any."""
    f = dist.fields
    campaign = f.get("campaign_name") or f.get("campaign_ref") or "?"
    ref, send_key = f.get("campaign_ref", "?"), f.get("send_key", "?")
    lines = [
        f"{EMOJI.get(state, ':warning:')} Punchh distribution *{escape(state)}*: "
        f"`{escape(dist.id)}`",
        f"Source: {escape(f.get('source', '?'))} · Campaign: {escape(campaign)} "
        f"(ref `{escape(ref)}`, send key `{escape(send_key)}`)",
        f"Segment: \u201c{escape(f.get('segment', '?'))}\u201d · Redeemable: "
        f"\u201c{escape(f.get('redeemable', '?'))}\u201d · Recipients so far: "
        f"{dist.int_field('recipients')} · Attempts: {dist.int_field('attempts')}",
        f"Reason: {escape(f.get('last_error') or 'not recorded')}",
        *(
            [f"Again, after {escape(str(after.get('action')))} by {escape(str(after.get('by')))}"]
            if after
            else []
        ),
        ACTIONS.get(state, "Run `punchh-connector show {id}`.").format(id=escape(dist.id)),
    ]
    return {"text": "\n".join(lines)}


def entry_name(state: str, after: str = "") -> str:
    """This entry into the state, as the ledger marks it alerted (`after`: see entry_after)."""
    return f"{state}@{after}" if after else state  # no "@" in a state: names cannot collide


def entry_after(dist: Distribution) -> tuple[str, dict[str, Any] | None]:
    """The operator action this entry into the state follows: its time (the key's part) and
    the action; ("", None) before any action, or after an undo cleared it."""
    last = last_action(dist)
    if not last or not last.get("at"):
        return "", None
    return str(last["at"]), last


def send_alert(distribution_id: str, state: str) -> str:
    """RQ entry point: post one alert; raises on failure so RQ retries it."""
    return deliver(context.services(), distribution_id, state)


def deliver(
    services: Services,
    distribution_id: str,
    state: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Send the alert once; returns sent, disabled, missing, moved_on or duplicate."""
    url = services.settings.alert_webhook_url
    if not url:
        return "disabled"
    dist = services.ledger.get(distribution_id)
    if dist is None:
        return "missing"
    if dist.state != state:
        # Already acted on (released, retried, or a late Punchh answer settled it).
        log.info(
            "alert skipped: state moved on",
            extra={"distribution_id": distribution_id, "state": dist.state, "alerted": state},
        )
        return "moved_on"
    after, action = entry_after(dist)
    entry = entry_name(state, after)
    keep = max(services.settings.retention_seconds, 60)
    if not services.ledger.mark_alerted(distribution_id, entry, keep):
        return "duplicate"
    _hide(url)
    try:
        with httpx.Client(timeout=ALERT_TIMEOUT, transport=transport) as client:
            reply = client.post(url, json=message(dist, state, action))
            reply.raise_for_status()
    except httpx.HTTPError as exc:
        services.ledger.unmark_alerted(distribution_id, entry)  # let RQ's retry send it
        log.warning(
            "alert failed",
            extra={"distribution_id": distribution_id, "state": state,
                   "error": type(exc).__name__},
        )
        raise AlertFailed(f"alert webhook failed: {type(exc).__name__}") from None
    log.info("alert sent", extra={"distribution_id": distribution_id, "state": state})
    return "sent"


class AlertFailed(RuntimeError):
    """The webhook did not take the alert (no URL or body in the message: it is secret)."""
