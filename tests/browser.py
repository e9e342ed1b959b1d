"""Debian's Chromium driven by Playwright's Python package, for the tests of the pages.

Imported by page tests; it skips the importing module where Chromium or Playwright is missing
(except under CI, where a missing one is a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)
try:
    from playwright.sync_api import Browser, sync_playwright
except ImportError:  # pragma: no cover - CI installs it; a bare dev box may not have it
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (Playwright's own browser download is not used)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def snapshot(page: Any, name: str) -> None:
    """Save a screenshot for the guides when $SCREENSHOTS_DIR is set (scripts/screenshots.py)."""
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)
