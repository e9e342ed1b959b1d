"""The pages a newcomer and an operator open, in real headless Chromium against gunicorn."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.browser import browser, snapshot  # noqa: F401 - the fixture
from tests.conftest import API_TOKEN
from tests.procs import BIN, ROOT, Proc, start_gunicorn, wait_until

pytestmark = pytest.mark.browser

from playwright.sync_api import Browser, expect  # noqa: E402 - after tests.browser's skip


def test_home_page_says_what_this_is_and_links_the_rest(browser: Browser, web: Proc) -> None:
    page = browser.new_context().new_page()
    page.goto(web.url + "/")
    expect(page.locator("h1")).to_have_text("punchh-connector")
    expect(page.locator("body")).to_contain_text("exactly one")
    links = {
        page.locator("a", has_text=text).first.get_attribute("href")
        for text in ("Status", "API documentation", "Health", "SFMC activity")
    }
    assert links == {"/status", "/docs", "/healthz", "/sfmc/"}
    page.locator("a", has_text="Health").first.click()
    expect(page.locator("body")).to_contain_text('"status"')
    page.go_back()
    page.locator("a", has_text="SFMC activity").click()
    expect(page.locator("h1")).to_have_text("Punchh Offer")
    page.context.close()


def test_status_links_each_send_to_its_page_and_the_cli_acts_on_it(
    browser: Browser, web: Proc, worker: Proc, env: dict[str, str]
) -> None:
    """A Braze send naming a segment Punchh lacks: /status → its page → the CLI command."""
    long_ref = "spring-winback-campaign-6d8f2a0e4b1c4f7a9e3d"
    body = {"punchh_segment": "Lapsed 120 days", "punchh_redeemable": "Free Coffee",
            "campaign_id": long_ref, "send_key": "dispatch-7f3e9a1b2c4d5e6f8a9b0c1d2e3f4a5b"}
    headers = {"Authorization": "Bearer braze-token-1"}
    for n in range(4):
        reply = httpx.post(f"{web.url}/webhooks/braze", json={**body, "user_id": f"g{n}"},
                           headers=headers, timeout=10)
        assert reply.status_code == 202, reply.text
    dist_id = reply.json()["distribution_id"]
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    assert wait_until(lambda: httpx.get(f"{web.url}/v1/distributions/{dist_id}", headers=api,
                                        timeout=5).json()["state"] == "rejected", 30)

    context = browser.new_context(
        http_credentials={"username": "operator", "password": API_TOKEN},
        viewport={"width": 700, "height": 900},
    )
    page = context.new_page()
    page.goto(f"{web.url}/status")
    snapshot(page, "status.png")
    page.locator("td.id a").first.click()
    expect(page.locator("#state")).to_have_text("rejected")
    expect(page.locator("#last-error")).to_contain_text("'Lapsed 60 days'")
    expect(page.locator("#recipients")).to_contain_text("4 recipient(s) counted")
    expect(page.locator("#recipients-chart polyline")).to_have_count(1)
    expect(page.locator("#timeline")).to_contain_text("rejected")
    # The long id wraps, but only after a ':' — every part stays on one line.
    parts = page.locator("#send-id .idp")
    assert parts.count() == 3
    for n in range(3):
        assert parts.nth(n).evaluate("e => e.getClientRects().length") == 1
    assert page.locator("#send-id").evaluate("e => e.getBoundingClientRect().height") > 40
    snapshot(page, "send.png")
    command = page.locator("#next pre").first.inner_text()
    assert command == f"punchh-connector retry {dist_id}"
    context.close()

    # The operator pastes it into a second terminal.
    done = subprocess.run(
        [str(BIN / command.split()[0]), *command.split()[1:]], cwd=ROOT,
        env={"PATH": str(BIN), **env}, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "rejected → queued" in done.stdout


def test_api_docs_render_the_openapi_document_from_the_vendored_renderer(
    browser: Browser, web: Proc
) -> None:
    """/docs: Redoc from our own static files; nothing elsewhere is loaded."""
    page = browser.new_context().new_page()
    elsewhere: list[tuple[str, str]] = []
    failed: set[str] = set()
    page.on("request", lambda r: None if r.url.startswith((web.url, "blob:", "data:"))
            else elsewhere.append((r.resource_type, r.url)))
    page.on("requestfailed", lambda r: failed.add(r.url))
    page.goto(web.url + "/")
    page.locator("a", has_text="API documentation").click()
    expect(page.locator("h1").first).to_contain_text("punchh-connector", timeout=15000)
    expect(page.locator("body")).to_contain_text("Liveness: the process answers")
    expect(page.locator("body")).to_contain_text("/webhooks/braze")
    # Redoc's footer asks for its maker's logo from a CDN; the page's policy refuses it (the
    # image hides itself), and nothing else — script, style, font, data — leaves the origin.
    assert {kind for kind, _ in elsewhere} <= {"image"}, elsewhere
    assert {url for _, url in elsewhere} <= failed, (elsewhere, failed)
    page.context.close()


def test_the_vendored_renderer_is_the_pinned_one() -> None:
    """The file served is byte for byte the one the vendoring note pins."""
    vendor = ROOT / "connector" / "static" / "docs" / "vendor"
    note = (vendor / "README.md").read_text()
    for name in ("redoc.standalone.js", "redoc.standalone.js.LICENSE.txt", "LICENSE"):
        digest = hashlib.sha256((vendor / name).read_bytes()).hexdigest()
        assert f"`{name}` `{digest}`" in note, name


@pytest.fixture
def local_mc_web(
    env: dict[str, str], rdb: redis.Redis, sandbox: httpx.Client
) -> Iterator[Proc]:
    """The connector as `make run` starts it: Marketing Cloud is the sandbox's stand-in."""
    env["SFMC_REST_BASE_URL"] = f"{sandbox.base_url}/_sfmc"
    proc = start_gunicorn(env, workers=1, threads=8)
    yield proc
    proc.stop()


def test_journey_builder_simulator_configures_the_real_ui_and_runs_one_campaign(
    browser: Browser, local_mc_web: Proc, worker: Proc, sandbox: httpx.Client
) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{local_mc_web.url}/sfmc/simulator/")
    ui = page.frame_locator("#activity")
    # The pickers list the sandbox's items through the Marketing Cloud stand-in.
    expect(ui.locator("#segment option[value='Lapsed 90 days']")).to_have_count(1)
    expect(ui.locator("#status")).to_have_text("Loaded")
    ui.locator("#segment").select_option(value="Lapsed 90 days")
    ui.locator("#redeemable").select_option(value="Free Coffee")
    ui.locator("#run-id-field").select_option(value="{{Event.DEAudience-1.RunId}}")
    snapshot(page, "sfmc-activity.png")
    page.locator("#jb-done").click()  # Journey Builder's own Done: clickedNext
    expect(page.locator("#run")).to_be_enabled()
    expect(page.locator("#in-arguments")).to_contain_text('"punchh_segment": "Lapsed 90 days"')
    for step in ("ready → initActivity", "requestTokens → requestedTokens",
                 "requestSchema → requestedSchema", "updateActivity"):
        expect(page.locator("#jb-log")).to_contain_text(step)

    page.locator("#contacts").fill("30")
    page.locator("#run").click()
    expect(page.locator("#state")).to_have_text("committed", timeout=30000)
    expect(page.locator("#sent")).to_have_text("30 (1 send)")
    expect(page.locator("#recipients")).to_have_text("30")
    dist_id = page.locator("#distribution").inner_text()
    assert dist_id.startswith("sfmc:") and dist_id.endswith(":run-" + dist_id.split(":run-")[-1])
    made = [c for c in sandbox.get("/_sandbox/campaigns").json()
            if c["body"].get("external_campaign_id") == dist_id]
    assert len(made) == 1
    expect(page.locator("#campaign")).to_have_text(str(made[0]["campaign_id"]))
    snapshot(page, "sfmc-simulator-run.png")
    page.context.close()


def test_the_simulator_exists_only_on_a_local_stack(web: Proc) -> None:
    """A deployment (no local Marketing Cloud stand-in) never signs bodies for anyone."""
    for method, path in (("GET", "/sfmc/simulator/"), ("POST", "/sfmc/simulator/bodies")):
        reply = httpx.request(method, web.url + path, json={"contacts": 1}, timeout=5)
        assert reply.status_code == 404, (path, reply.text)
        assert "local stack" in reply.json()["error"]["message"]
