"""The admin in a real browser: log in, create a key, read its secret once, and call the API with it.

Headless Chromium (Debian's `chromium` package) driven by Playwright, which uses that binary and
downloads no browser of its own. Without Chromium or Playwright the test is skipped, except under
CI=true, where it fails: CI must install them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} [CI=true: the browser test must run]", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    """Return the system Chromium, or skip (fail under CI) without one."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _unavailable("Chromium is not installed: apt-get install -y chromium")
    return path


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator:
    """Return a page of a headless Chromium with a fresh profile."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install -e '.[test]'")
    executable = chromium_path()
    with sync_playwright() as playwright:
        # A persistent context is how Playwright takes a --user-data-dir: a fresh one per test.
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        context.set_default_timeout(30_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def admin_password(gateway) -> str:
    """Create the admin as an operator does, with `manage.py start`, and return the printed password."""
    output = gateway.manage("start", "--no-serve").stdout
    match = re.search(r"^  Password: (\S+)  \(saved in ", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_an_admin_creates_a_key_in_the_browser_and_the_key_works(gateway, browser_page, tmp_path):
    password = admin_password(gateway)
    page = browser_page

    page.goto(f"{gateway.url}/admin/")  # the URL `manage.py start` prints; it sends us to log in
    page.fill("#id_username", "admin")
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    page.get_by_role("link", name="Virtual keys").first.click()
    page.wait_for_url("**/admin/llm_gateway/virtualkey/")
    page.get_by_title("Add virtual key").click()
    page.fill("#id_key_alias", "browser-made")
    page.click("[name=_save]")

    page.wait_for_url(re.compile(r"/admin/llm_gateway/virtualkey/[0-9a-f-]+/change/$"))
    secret = page.locator("input[data-secret]").input_value()
    screenshot = tmp_path / "key-created.png"
    page.screenshot(path=str(screenshot), full_page=True)

    assert secret.startswith("sk-")
    assert screenshot.stat().st_size > 0
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    models = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert models.status_code == 200, models.text
    page.reload()
    assert secret not in page.content()
