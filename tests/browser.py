"""Headless Debian Chromium driven by Playwright, with the flags this sandbox needs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home at start; the network is closed here.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Debian's chromium is not installed: run the README's test command, which installs it")
    return path


@contextmanager
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


def wait_for_playable_video(page: Any, selector: str, timeout_ms: int = 120_000) -> dict[str, Any]:
    """Wait until the <video> under ``selector`` has loaded metadata: a real, decodable file."""
    page.wait_for_function(
        """sel => { const v = document.querySelector(sel + ' video');
                    return v && v.currentSrc && v.readyState >= 1 && v.duration > 0 && v.videoWidth > 0; }""",
        arg=selector,
        timeout=timeout_ms,
    )
    return page.evaluate(
        """sel => { const v = document.querySelector(sel + ' video');
                    return {src: v.currentSrc, duration: v.duration, width: v.videoWidth, height: v.videoHeight,
                            error: v.error ? v.error.code : null}; }""",
        selector,
    )
