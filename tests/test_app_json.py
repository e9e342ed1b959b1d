"""app.json (one-click deploy) describes every variable the connector reads; Procfiles agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Variables a listed add-on sets, so the deployer is not asked for them.
ADDON_PROVIDED = {"REDIS_URL": "heroku-redis"}
#: Variables the platform itself sets.
PLATFORM_PROVIDED = {"PORT"}


def app_json() -> dict:  # type: ignore[type-arg]
    return json.loads((ROOT / "app.json").read_text())  # type: ignore[no-any-return]


def settings_variables() -> set[str]:
    """Every name Settings.from_env reads (parsed from wiring/settings.py's source)."""
    source = (ROOT / "wiring" / "settings.py").read_text()
    names = set(re.findall(r'(?:required|number|flag|env\.get)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert {"REDIS_URL", "PUNCHH_API_KEY", "API_TOKEN", "ALERT_WEBHOOK_URL"} <= names
    return names


def gunicorn_variables() -> set[str]:
    source = (ROOT / "gunicorn.conf.py").read_text()
    return set(re.findall(r"environ\.get\(\s*[\"']([A-Z][A-Z0-9_]+)", source))


def test_every_variable_is_described() -> None:
    doc = app_json()
    env = doc["env"]
    for name in (settings_variables() | gunicorn_variables()) - PLATFORM_PROVIDED:
        if name in ADDON_PROVIDED:
            assert ADDON_PROVIDED[name] in doc["addons"], name
            continue
        assert name in env, f"{name} is read by the connector but missing from app.json"
        assert env[name]["description"].strip(), name
    stale = set(env) - settings_variables() - gunicorn_variables()
    assert not stale, f"app.json describes variables nothing reads: {stale}"


def test_required_secrets_and_defaults() -> None:
    env = app_json()["env"]
    assert env["PUNCHH_BASE_URL"]["required"] is True
    assert env["PUNCHH_API_KEY"]["required"] is True
    assert "value" not in env["PUNCHH_API_KEY"]
    for secret in ("API_TOKEN", "BRAZE_WEBHOOK_TOKEN"):
        assert env[secret]["generator"] == "secret"
    for name, spec in env.items():
        if "value" in spec:
            assert isinstance(spec["value"], str), name  # Heroku wants strings
            assert not re.search(r"TODO|CHANGE|<|example\.com", spec["value"]), name
    assert env["COMMIT_MAX_ATTEMPTS"]["value"] == "8"


def test_formation_addons_and_procfiles() -> None:
    doc = app_json()
    assert doc["formation"]["web"]["quantity"] == 1
    assert doc["formation"]["worker"]["quantity"] == 1
    assert doc["addons"] == ["heroku-redis"]
    assert "repository" not in doc or "github.com/" in doc["repository"]
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert set(procfile) == {"web", "worker", "release"}
    assert "gunicorn.conf.py" in procfile["web"]
    assert "check" in procfile["release"]
    dev = dict(
        line.split(":", 1) for line in (ROOT / "Procfile.dev").read_text().splitlines() if line
    )
    assert set(dev) == {"sandbox", "web", "worker"}


def test_readme_configuration_table_names_every_variable() -> None:
    """A newcomer reads the README's table, not wiring/settings.py: every variable has its row."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    missing = sorted((settings_variables() | gunicorn_variables()) - rows)
    assert not missing, f"missing from README's configuration table: {missing}"
