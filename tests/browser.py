"""Headless Chromium for browser tests: the system's browser through Playwright, never a download.

    with chromium_page(tmp_path) as page:
        page.goto(path.as_uri())

Skips the calling test, saying why, where Playwright or Chromium is missing.
"""
import contextlib
import os
import shutil

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_executable():
    for candidate in (os.environ.get("SEQMOD_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextlib.contextmanager
def chromium_page(downloads_path=None, **context_options):
    """A fresh page in a fresh browser context (downloads accepted), closed afterwards."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser test skipped: Playwright is not installed (pip install -r requirements-dev.txt)")
    executable = chromium_executable()
    if executable is None:
        pytest.skip("browser test skipped: Chromium is not installed (apt-get install chromium; "
                    "or set SEQMOD_CHROMIUM to its path)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True,
                                             downloads_path=str(downloads_path) if downloads_path else None)
        try:
            context = browser.new_context(accept_downloads=True, **context_options)
            page = context.new_page()
            yield page
            context.close()
        finally:
            browser.close()
