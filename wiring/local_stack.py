"""The local stack `make run` started: where it saves its URLs, tokens and environment.

scripts/dev.py writes the file (readable by this user only) while the stack runs and removes
it on exit; scripts/demo.py and the CLI read it, so a second terminal needs nothing exported.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: What the CLI needs from the stack's environment (and the banner's export block shows).
CLI_ENV = ("REDIS_URL", "KEY_PREFIX", "QUEUE_NAME", "PUNCHH_BASE_URL", "PUNCHH_API_KEY",
           "API_TOKEN")


def state_file() -> Path:
    """The file's path: $PUNCHH_DEV_STATE, else one per user in the temporary folder."""
    return Path(
        os.environ.get("PUNCHH_DEV_STATE")
        or Path(tempfile.gettempdir()) / f"punchh-connector-dev-{os.getuid()}.json"
    )


def read() -> dict[str, Any]:
    """What the running stack saved, or {} when none runs."""
    try:
        saved = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def write(info: dict[str, Any]) -> None:
    """Save the stack's details, readable by this user only."""
    fd = os.open(state_file(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle)


def cli_environment(environ: dict[str, str]) -> tuple[dict[str, str], Path | None]:
    """`environ`, completed from the running local stack when it names no Redis.

    A deployment always sets REDIS_URL, so it never reads the file; a second terminal next to
    `make run` sets nothing and gets the stack's values. Returns the file read, if any.
    """
    if environ.get("REDIS_URL"):
        return environ, None
    saved = read().get("env")
    if not isinstance(saved, dict):
        return environ, None
    merged = dict(environ)
    for name in CLI_ENV:
        if not merged.get(name) and saved.get(name):
            merged[name] = str(saved[name])
    return merged, state_file()
