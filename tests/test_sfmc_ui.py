"""The configuration UI in real headless Chromium, framed by a page playing Journey Builder.

The harness page is served at an https://*.exacttarget.com address (answered by Playwright's
router, no network), so the connector's `frame-ancestors` policy is exercised for real; it
frames the connector's UI (gunicorn) and speaks Postmonger from the parent side.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.browser import browser  # noqa: F401 - the fixture; skips this module without Chromium
from tests.procs import Proc, start_gunicorn
from tests.sfmc_sim import GOOD_TOKEN, SimMC, harness_html, lifecycle_claims, sign, start_mc

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

from playwright.sync_api import Browser, Page, Route, expect  # noqa: E402 - after the skip

JB_PAGE = "https://jb.s7.exacttarget.com/journeybuilder/activity-harness.html"
OTHER_PAGE = "https://evil.example.net/frame.html"
#: The connector's public address in the browser; requests to it are relayed to gunicorn.
#: (A public page framing 127.0.0.1 directly is blocked by Chrome's local-network checks.)
CONNECTOR = "https://punchh-connector.example.com"
ACTIVITY = "7b3e91c4-0000-4000-8000-0000000000a1"

@pytest.fixture
def mc() -> Iterator[SimMC]:
    """The simulated Marketing Cloud answering tokenContext."""
    with start_mc() as sim:
        yield sim


@pytest.fixture
def ui_web(
    env: dict[str, str], mc: SimMC, rdb: redis.Redis, sandbox: httpx.Client
) -> Iterator[Proc]:
    """The connector under gunicorn, checking UI tokens against the simulated Marketing Cloud."""
    env["SFMC_REST_BASE_URL"] = mc.url
    proc = start_gunicorn(env, workers=1, threads=4)
    yield proc
    proc.stop()


def saved_activity(base: str) -> dict[str, Any]:
    """An activity as Journey Builder hands it back on reopen: configured before."""
    return {
        "id": ACTIVITY,
        "key": "REST-1",
        "name": "Punchh Offer",
        "type": "REST",
        "outcomes": [{"key": "outcome-1", "next": "WAITBYDURATION-1"}],
        "arguments": {
            "execute": {
                "inArguments": [
                    {
                        "punchh_segment": "Loyalty Members",
                        "punchh_redeemable": "Free Dessert",
                        "run_id": "{{Context.PublicationId}}",
                        "start_time": "2030-01-02T10:30:00Z",
                        "punchh_campaign_name": "Old name",
                    }
                ],
                "outArguments": [],
                "url": f"{base}/sfmc/execute",
                "useJwt": True,
            }
        },
        "configurationArguments": {"validate": {"url": f"{base}/sfmc/validate", "useJwt": True}},
        "metaData": {"icon": f"{base}/sfmc/assets/icon.png", "isConfigured": True},
    }


def relay_connector(page: Page, web: Proc) -> None:
    """Serve CONNECTOR's requests from the gunicorn under test, as a router would."""

    def relay(route: Route) -> None:
        target = web.url + route.request.url[len(CONNECTOR) :]
        route.fulfill(response=route.fetch(url=target, max_redirects=0))

    page.route(f"{CONNECTOR}/**", relay)


def open_harness(browser: Browser, web: Proc, activity: dict[str, Any]) -> Page:
    """A page at a Marketing Cloud address, framing the UI, speaking Postmonger."""
    context = browser.new_context(timezone_id="UTC")
    page = context.new_page()
    relay_connector(page, web)
    html = harness_html(f"{CONNECTOR}/sfmc/index.html", activity)
    page.route(
        "https://jb.s7.exacttarget.com/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page.goto(JB_PAGE)
    return page


def test_ui_restores_picks_and_writes_the_activity(
    browser: Browser, ui_web: Proc, mc: SimMC, rdb: redis.Redis
) -> None:
    page = open_harness(browser, ui_web, saved_activity(CONNECTOR))
    frame = page.frame_locator("#activity")

    # initActivity restored the saved configuration.
    expect(frame.locator("#segment-chosen")).to_have_text("Loyalty Members")
    expect(frame.locator("#redeemable-chosen")).to_have_text("Free Dessert")
    expect(frame.locator("#run-id")).to_have_value("{{Context.PublicationId}}")
    expect(frame.locator("#start-time")).to_have_value("2030-01-02T10:30")
    expect(frame.locator("#campaign-name")).to_have_value("Old name")

    # The lists come from the sandbox through the connector, authorised by the MC token.
    expect(frame.locator("#redeemable option[value='Free Coffee']")).to_have_count(1)
    expect(frame.locator("#segment option[value='Weekend Regulars']")).to_have_count(2)
    assert "tokenContext" in mc.calls

    # An ambiguous segment is refused on Done, and nothing goes back to Journey Builder.
    frame.locator("#segment").select_option(value="Weekend Regulars")
    frame.locator("#done").click()
    error = frame.locator("#error")
    expect(error).to_contain_text('2 Punchh segments are named "Weekend Regulars"')
    assert page.evaluate("window.jb.updates.length") == 0

    # Search, pick, bind the run id to a data-extension column, set a start time, Done.
    frame.locator("#segment-search").fill("Lapsed")
    expect(frame.locator("#segment option", has_not_text="Lapsed")).to_have_count(0)
    expect(frame.locator("#segment option[value='Lapsed 90 days']")).to_have_count(1)
    frame.locator("#segment").select_option(value="Lapsed 90 days")
    frame.locator("#redeemable").select_option(value="Free Coffee")
    frame.locator("#run-id-field").select_option(value="{{Event.DEAudience-1.RunId}}")
    frame.locator("#start-time").fill("2030-03-04T05:06")
    frame.locator("#campaign-name").fill("Spring win-back")
    frame.locator("#done").click()
    page.wait_for_function("window.jb.updates.length === 1")
    expect(frame.locator("#error")).to_be_hidden()

    update = page.evaluate("window.jb.updates[0]")
    assert update["arguments"]["execute"]["inArguments"] == [
        {
            "punchh_segment": "Lapsed 90 days",
            "punchh_redeemable": "Free Coffee",
            "run_id": "{{Event.DEAudience-1.RunId}}",
            "start_time": "2030-03-04T05:06:00Z",
            "punchh_campaign_name": "Spring win-back",
        }
    ]
    assert update["metaData"]["isConfigured"] is True
    # The rest of the activity Journey Builder gave us comes back untouched.
    saved = saved_activity(CONNECTOR)
    for key in ("id", "key", "name", "type", "outcomes", "configurationArguments"):
        assert update[key] == saved[key]
    assert update["arguments"]["execute"]["url"] == saved["arguments"]["execute"]["url"]
    text = json.dumps(update)
    assert GOOD_TOKEN not in text and "legacy-soap-token" not in text
    seen = page.evaluate("window.jb.seen")
    for request in ("ready", "requestTokens", "requestInteraction", "requestSchema"):
        assert request in seen

    # The connector remembered the offer, so validate (JB's activation check) passes.
    record = {k.decode(): v.decode() for k, v in rdb.hgetall(f"pc:sfmc:act:{ACTIVITY}").items()}
    assert record["segment"] == "Lapsed 90 days"
    assert record["redeemable"] == "Free Coffee"
    assert record["run_id"] == "{{Event.DEAudience-1.RunId}}"
    validate = httpx.post(
        f"{ui_web.url}/sfmc/validate",
        content=sign(lifecycle_claims(activity_id=ACTIVITY)),
        headers={"Content-Type": "application/jwt"},
    )
    assert validate.status_code == 200, validate.text

    # Journey Builder's own Done button (clickedNext) saves the same way.
    frame.locator("#redeemable").select_option(value="$5 Off")
    page.evaluate("window.jb.trigger('clickedNext')")
    page.wait_for_function("window.jb.updates.length === 2")
    second = page.evaluate("window.jb.updates[1]")
    assert second["arguments"]["execute"]["inArguments"][0]["punchh_redeemable"] == "$5 Off"
    page.context.close()


def test_ui_in_a_new_journey_saves_a_draft(
    browser: Browser, ui_web: Proc, rdb: redis.Redis
) -> None:
    fresh = {"key": "REST-2", "name": "Punchh Offer", "arguments": {"execute": {}},
             "metaData": {"isConfigured": False}}
    page = open_harness(browser, ui_web, fresh)
    frame = page.frame_locator("#activity")
    expect(frame.locator("#segment-chosen")).to_have_text("none")
    frame.locator("#done").click()
    expect(frame.locator("#error")).to_contain_text("Pick a Punchh segment")
    expect(frame.locator("#segment option[value='VIP Guests']")).to_have_count(1)
    frame.locator("#segment").select_option(value="VIP Guests")
    frame.locator("#redeemable").select_option(value="Free Dessert")
    frame.locator("#done").click()
    page.wait_for_function("window.jb.updates.length === 1")
    update = page.evaluate("window.jb.updates[0]")
    assert update["arguments"]["execute"]["inArguments"] == [
        {"punchh_segment": "VIP Guests", "punchh_redeemable": "Free Dessert"}
    ]
    assert update["metaData"]["isConfigured"] is True
    assert rdb.hexists("pc:sfmc:draft:punchh-journey-key", "REST-2")
    page.context.close()


def test_ui_cannot_be_framed_by_another_site(browser: Browser, ui_web: Proc) -> None:
    context = browser.new_context()
    page = context.new_page()
    relay_connector(page, ui_web)
    html = f'<iframe id="activity" src="{CONNECTOR}/sfmc/index.html"></iframe>'
    page.route(
        "https://evil.example.net/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page.goto(OTHER_PAGE)
    page.wait_for_load_state("load")
    child = page.frames[1]
    # Chromium replaces a frame refused by frame-ancestors with its error page.
    assert child.url.startswith("chrome-error://"), child.url
    context.close()


def test_ui_opened_on_its_own_says_what_it_is(browser: Browser, ui_web: Proc) -> None:
    """Outside Journey Builder nobody answers `ready`: the page says what it is, not
    "Connecting…" forever."""
    page = browser.new_context().new_page()
    relay_connector(page, ui_web)
    page.goto(f"{CONNECTOR}/sfmc/")
    expect(page.locator("#status")).to_have_text("Connecting to Journey Builder…")
    expect(page.locator("#standalone")).to_be_visible(timeout=6000)
    expect(page.locator("#standalone")).to_contain_text("runs inside Journey Builder")
    expect(page.locator("#status")).to_have_text("Not inside Journey Builder")
    page.locator("#standalone a", has_text="home").click()
    page.wait_for_url(f"{CONNECTOR}/")
    page.context.close()


def test_ui_gifts_the_contacts_of_the_journey_with_a_bound_identifier(
    browser: Browser, ui_web: Proc, rdb: redis.Redis
) -> None:
    page = open_harness(browser, ui_web, saved_activity(CONNECTOR))
    frame = page.frame_locator("#activity")
    expect(frame.locator("#segment-picker")).to_be_visible()
    frame.locator("input[name='audience'][value='recipients']").check()
    expect(frame.locator("#segment-picker")).to_be_hidden()
    expect(frame.locator("#guest-field")).to_be_visible()

    # Without a bound column, Done says what is missing and nothing reaches Journey Builder.
    frame.locator("#redeemable").select_option(value="Free Coffee")
    frame.locator("#guest-binding").fill("880001")
    frame.locator("#done").click()
    expect(frame.locator("#error")).to_contain_text("data extension column")
    assert page.evaluate("window.jb.updates.length") == 0

    frame.locator("#guest-binding-field").select_option(value="{{Event.DEAudience-1.RunId}}")
    frame.locator("#guest-binding").fill("{{Contact.Attribute.Guests.punchh_user_id}}")
    frame.locator("#done").click()
    page.wait_for_function("window.jb.updates.length === 1")
    expect(frame.locator("#error")).to_be_hidden()
    args = page.evaluate("window.jb.updates[0]")["arguments"]["execute"]["inArguments"][0]
    assert args["punchh_audience"] == "recipients"
    assert args["punchh_user_id"] == "{{Contact.Attribute.Guests.punchh_user_id}}"
    assert "punchh_segment" not in args and args["punchh_redeemable"] == "Free Coffee"

    # Remembered for validate, which checks the offer and the binding, not a segment.
    record = {k.decode(): v.decode() for k, v in rdb.hgetall(f"pc:sfmc:act:{ACTIVITY}").items()}
    assert (record["audience"], record["segment"]) == ("recipients", "")
    validate = httpx.post(
        f"{ui_web.url}/sfmc/validate",
        content=sign(lifecycle_claims(activity_id=ACTIVITY)),
        headers={"Content-Type": "application/jwt"},
    )
    assert validate.status_code == 200, validate.text

    # Reopened, the activity shows the journey's contacts again.
    reopened = saved_activity(CONNECTOR)
    reopened["arguments"]["execute"]["inArguments"] = [args]
    again = open_harness(browser, ui_web, reopened).frame_locator("#activity")
    expect(again.locator("#guest-binding")).to_have_value(
        "{{Contact.Attribute.Guests.punchh_user_id}}"
    )
    expect(again.locator("#segment-picker")).to_be_hidden()
    page.context.close()
