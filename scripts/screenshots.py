"""Regenerate the guides' screenshots (docs/img/) from the browser tests, on the real pages.

Runs tests/test_pages.py in real headless Chromium with SCREENSHOTS_DIR set; each test saves
what a marketer or operator sees at the moment it checks it. Needs Redis (TEST_REDIS_URL, as
for `make test`) and /usr/bin/chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    """Run the page tests with screenshots on; pytest's exit status."""
    env = {**os.environ, "SCREENSHOTS_DIR": str(ROOT / "docs" / "img")}
    tests = ["tests/test_pages.py::test_status_links_each_send_to_its_page_and_the_cli_acts_on_it",
             "tests/test_pages.py::"
             "test_journey_builder_simulator_configures_the_real_ui_and_runs_one_campaign"]
    return subprocess.call(  # noqa: S603 - our own venv's pytest on our own tests
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=ROOT, env=env
    )


if __name__ == "__main__":
    sys.exit(main())
