"""End to end in a real browser: the page a crew member sees, on the tiny model."""

from __future__ import annotations

import browser


def test_generate_in_the_browser(app_server, still):
    with browser.page() as page:
        page.goto(app_server.url)
        banner = page.locator("#tiny-banner")
        banner.wait_for(timeout=60_000)
        assert "noise" in banner.inner_text()
        page.locator("#gen-image input[type=file]").set_input_files(str(still))
        page.locator("#gen-prompt textarea").fill("a slow dolly-in on a lighthouse at dusk")
        page.locator("#gen-run").click()
        info = browser.wait_for_playable_video(page, "#gen-video")
        assert info["error"] is None and info["duration"] > 0
        record = page.locator("#gen-record").inner_text(timeout=10_000)
        assert "tiny" in record
