"""The log of API requests ``/_sandbox/requests`` shows, and the redaction that keeps guest
identifiers out of it and out of the server's own request lines."""

from __future__ import annotations

import logging
import re
from collections import deque

from sandbox.seed import JSON

REQUEST_LOG_SIZE = 1000
"""How many recent API requests ``/_sandbox/requests`` keeps."""

# A membership check names its guest in the query string (email= or user_id=).
_IDENTIFIER_PARAM = re.compile(r"(?<![^?&\s])(email|user_id)=[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """The text with every guest identifier in a query string replaced by ``[redacted]``."""
    return _IDENTIFIER_PARAM.sub(r"\1=[redacted]", text)


class RedactIdentifiers(logging.Filter):
    """Redacts guest identifiers in the server's request lines (werkzeug logs the query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's string arguments; never drop the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_server_log(logger_name: str = "werkzeug") -> None:
    """Put the redaction on the server's request logger once, however many apps are built."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactIdentifiers) for f in logger.filters):
        logger.addFilter(RedactIdentifiers())


class RequestLog:
    """Recent API requests and counts per endpoint and status; the state's lock guards it."""

    def __init__(self) -> None:
        """Empty."""
        self._requests: deque[JSON] = deque(maxlen=REQUEST_LOG_SIZE)
        self._counts: dict[str, dict[str, int]] = {}

    def record(self, entry: JSON) -> None:
        """Keep one request (its query redacted) and count it by endpoint and status."""
        entry = {**entry, "query": redact(str(entry.get("query", "")))}
        self._requests.append(entry)
        per_status = self._counts.setdefault(entry["endpoint"], {})
        key = str(entry["status"])
        per_status[key] = per_status.get(key, 0) + 1

    def public(self) -> JSON:
        """Counts per endpoint and status, totals per endpoint, and the recent requests."""
        counts = {name: dict(c) for name, c in self._counts.items()}
        return {
            "counts": counts,
            "totals": {name: sum(c.values()) for name, c in counts.items()},
            "requests": list(self._requests),
        }
