"""Screenshot the top of a report's ``index.html`` as Chromium renders it.

    python tools/screenshot_report.py reports/example        # -> reports/example/screenshot.png

Uses Debian's ``/usr/bin/chromium`` through playwright, with the same browser and flags as
the HTML report test (``tests/e2e/test_report_browser.py``); never downloads a browser.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_report_browser import ARGS, CHROMIUM

VIEWPORT = {"width": 1280, "height": 860}


def screenshot(folder: Path) -> Path:
    target = folder / "screenshot.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto((folder / "index.html").resolve().as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(target))
        finally:
            browser.close()
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/screenshot_report.py REPORT_FOLDER")
    print(screenshot(Path(sys.argv[1])))
