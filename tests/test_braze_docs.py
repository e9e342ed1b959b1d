"""docs/braze.md shows the answers as Braze's Message Activity Log shows them: they are real."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from flask.testing import FlaskClient

from tests.conftest import API_TOKEN

DOC = Path(__file__).resolve().parent.parent / "docs" / "braze.md"
HEADING = "## The answers, as Braze's Message Activity Log shows them"


def documented() -> list[object]:
    """The JSON blocks of the section, in order: body, 202, test-send body, 200, 401."""
    section = DOC.read_text().split(HEADING, 1)[1].split("\n## ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", section, re.S)]


def test_the_documented_answers_are_what_the_connector_answers(
    client: FlaskClient, sandbox: httpx.Client
) -> None:
    body, accepted, test_body, test_answer, refused = documented()
    token = {"Authorization": "Bearer braze-token-1"}
    reply = client.post("/webhooks/braze", json=body, headers=token)
    assert (reply.status_code, reply.json) == (202, accepted)
    reply = client.post("/webhooks/braze", json=test_body, headers=token)
    assert (reply.status_code, reply.json) == (200, test_answer)
    reply = client.post("/webhooks/braze", json=body,
                        headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert (reply.status_code, reply.json) == (401, refused)
