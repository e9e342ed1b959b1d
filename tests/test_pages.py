"""The pages a newcomer and an operator open, in real headless Chromium against gunicorn."""

from __future__ import annotations

import pytest

from tests.browser import browser  # noqa: F401 - the fixture
from tests.procs import Proc

pytestmark = pytest.mark.browser

from playwright.sync_api import Browser, expect  # noqa: E402 - after tests.browser's skip


def test_home_page_says_what_this_is_and_links_the_rest(browser: Browser, web: Proc) -> None:  # noqa: F811
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
