"""End to end in a real browser: the page a crew member sees, on the tiny model."""

from __future__ import annotations

from playwright.sync_api import expect

import browser


def test_generate_in_the_browser(app_server, still):
    with browser.page() as page:
        page.goto(app_server.url)
        banner = page.locator("#model-banner")
        banner.wait_for(timeout=60_000)
        assert "noise" in banner.inner_text()
        page.locator("#gen-image input[type=file]").set_input_files(str(still))
        page.locator("#gen-prompt textarea").fill("a slow dolly-in on a lighthouse at dusk")
        page.locator("#gen-run").click()
        info = browser.wait_for_playable_video(page, "#gen-video")
        assert info["error"] is None and info["duration"] > 0
        record = page.locator("#gen-record").inner_text(timeout=10_000)
        assert "tiny" in record


def _import_in_browser(page, path, kind, name):
    page.get_by_role("tab", name="Adapters").click()
    page.locator("#ad-file input[type=file]").set_input_files(str(path))
    page.locator("#ad-kind").get_by_text(kind, exact=True).click()
    page.locator("#ad-name textarea, #ad-name input").first.fill(name)
    page.locator("#ad-import").click()
    page.locator("#ad-status").get_by_text(f"Imported {name}").wait_for(timeout=60_000)


def _choose(page, elem_id, option):
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_import_adapters_then_generate_with_them(app_server, still, tmp_path):
    from cinescene import loading

    import lora_fixtures as lf

    tr = loading.build_tiny_pipeline().transformer
    style = lf.save(lf.comfyui_layout(lf.random_lora(tr, lf.STYLE, seed=21), alpha=4.0), tmp_path / "ui-look.safetensors")
    motion = lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.MOTION, seed=22)), tmp_path / "ui-move.safetensors")
    with browser.page() as page:
        page.goto(app_server.url)
        _import_in_browser(page, style, "style", "ui-look")
        expect(page.locator("#ad-table")).to_contain_text("ui-look", timeout=30_000)
        _import_in_browser(page, motion, "motion", "ui-move")
        page.get_by_role("tab", name="Generate").click()
        _choose(page, "gen-style", "ui-look")
        _choose(page, "gen-motion", "ui-move")
        page.locator("#gen-image input[type=file]").set_input_files(str(still))
        page.locator("#gen-prompt textarea").fill("a slow dolly-in")
        page.locator("#gen-run").click()
        browser.wait_for_playable_video(page, "#gen-video")
        expect(page.locator("#gen-record")).to_contain_text("ui-move", timeout=30_000)
        expect(page.locator("#gen-record")).to_contain_text("ui-look")


def test_compare_tab_shows_two_videos_and_metrics(app_server, still, tmp_path):
    from cinescene import loading

    import lora_fixtures as lf

    tr = loading.build_tiny_pipeline().transformer
    style = lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE, seed=41)), tmp_path / "cmp-ui.safetensors")
    with browser.page() as page:
        page.goto(app_server.url)
        _import_in_browser(page, style, "style", "cmp-ui")
        page.get_by_role("tab", name="Compare").click()
        _choose(page, "cmp-style", "cmp-ui")
        page.locator("#cmp-image input[type=file]").set_input_files(str(still))
        page.locator("#cmp-prompt textarea").fill("the beam sweeps the sky")
        page.locator("#cmp-run").click()
        base = browser.wait_for_playable_video(page, "#cmp-base")
        tuned = browser.wait_for_playable_video(page, "#cmp-tuned")
        assert base["duration"] > 0 and tuned["duration"] > 0 and base["src"] != tuned["src"]
        expect(page.locator("#cmp-table")).to_contain_text("LPIPS base vs tuned", timeout=30_000)
        expect(page.locator("#cmp-table")).to_contain_text("CLIP-SIM text")
        expect(page.locator("#cmp-notice")).to_contain_text("Uncalibrated")
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)


def _served_file(src):
    """The local file behind a gradio file URL (the app runs on this machine)."""
    from pathlib import Path
    from urllib.parse import unquote

    return Path(unquote(src.split("file=", 1)[1]))


def test_blind_review_hides_the_sides_until_the_choice_and_keeps_it(app_server, still, tmp_path):
    import json
    import re

    from cinescene import loading
    from cinescene.adapters import AdapterLibrary

    import lora_fixtures as lf

    tr = loading.build_tiny_pipeline().transformer
    style = lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE, seed=43)), tmp_path / "blind-ui.safetensors")
    # Into the app's library on disk (importing through the page is another test's): the page lists it on load.
    AdapterLibrary(app_server.loras).import_file(style, "style", name="blind-ui", base_model="tiny", transformer=tr)
    with browser.page() as page:
        page.goto(app_server.url)
        page.get_by_role("tab", name="Compare").click()
        for label, value in (("Frames (4k+1)", "5"), ("Steps", "2")):  # a short shot: two compares to make
            box = page.get_by_role("tabpanel").get_by_label(f"number input for {label}")
            box.fill(value)
            box.press("Tab")
        page.locator("#cmp-blind input[type=checkbox]").check()
        expect(page.locator("#cmp-run-blind")).to_be_visible()
        expect(page.locator("#cmp-run")).to_be_hidden()
        _choose(page, "cmp-style", "blind-ui")
        page.locator("#cmp-image input[type=file]").set_input_files(str(still))
        page.locator("#cmp-prompt textarea").fill("the beam sweeps the sky")
        for review, (seed, prefer, rate) in enumerate(((3, "tuned", "100%"), (4, "base", "50%")), 1):
            page.locator("#cmp-seed input").fill(str(seed))
            page.locator("#cmp-run-blind").click()
            expect(page.locator("#cmp-submit")).to_be_enabled(timeout=120_000)  # a new pair, not yet judged
            a = browser.wait_for_playable_video(page, "#cmp-a")
            b = browser.wait_for_playable_video(page, "#cmp-b")
            # Before the choice: nothing on the page or in a file name says which take is which.
            assert a["src"].endswith("/A.mp4") and b["src"].endswith("/B.mp4"), (a["src"], b["src"])
            panel = page.locator("#cmp-blind-panel").inner_text()
            for word in ("base", "tuned"):
                assert word not in (panel + a["src"] + b["src"]).lower(), panel
            expect(page.locator("#cmp-table")).to_be_hidden()
            expect(page.locator("#cmp-reveal")).to_be_hidden()
            # Which one A is, from the bytes of the file the browser plays against the compare folder's videos.
            folders = sorted((p.parent for p in app_server.outputs.glob("compare-*/metrics.json")
                              if json.loads(p.read_text())["adapters"][0]["name"] == "blind-ui"),
                             key=lambda f: f.stat().st_mtime)
            assert len(folders) == review
            folder = folders[-1]
            played = _served_file(a["src"]).read_bytes()
            a_side = next(side for side in ("base", "tuned") if (folder / f"{side}.mp4").read_bytes() == played)
            assert _served_file(b["src"]).read_bytes() != played
            page.locator("#cmp-choice-look").get_by_label("A" if a_side == prefer else "B", exact=True).check()
            page.locator("#cmp-choice-motion").get_by_label("tie", exact=True).check()
            page.locator("#cmp-submit").click()
            # After it: the sides, the numbers, and the stored choice names the side really chosen.
            expect(page.locator("#cmp-reveal")).to_contain_text(
                "A was the " + ("tuned take" if a_side == "tuned" else "base model"), timeout=30_000)
            expect(page.locator("#cmp-a")).to_contain_text(f"A: {a_side}")
            expect(page.locator("#cmp-table")).to_contain_text("LPIPS base vs tuned")
            (line,) = [json.loads(x) for x in (folder / "reviews.jsonl").read_text().splitlines()]
            assert line["preferred"] == {"look": prefer, "motion": "tie"} and line["shown"]["A"] == a_side
            # The win rate over every review of the adapter: 1 of 1, then 1 of 2.
            # Columns: adapter, question, win rate, interval, tuned / tie / base, reviews, blind.
            # (\S for "/": playwright reads a slash as the end of the pattern)
            look_row = rf"blind-ui \(style\) look {rate} \d+% to \d+% 1 \S 0 \S {review - 1} {review} {review}$"
            expect(page.locator("#cmp-win-rate").get_by_role("row", name=re.compile("^" + look_row))).to_be_visible()
        page.screenshot(path=str(tmp_path / "blind.png"), full_page=True)


def _dataset_zip(tmp_path):
    import zipfile

    from footage import make_dataset

    folder = make_dataset(tmp_path / "browser-set", clips=2, stills=1, frames=12)
    path = tmp_path / "browser-set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for file in folder.iterdir():
            zf.write(file, f"browser-set/{file.name}")
    return path


def test_train_tab_starts_plots_and_stops_with_a_checkpoint(app_server, tmp_path):
    with browser.page() as page:
        page.goto(app_server.url)
        page.get_by_role("tab", name="Train").click()
        page.locator("#train-zip input[type=file]").set_input_files(str(_dataset_zip(tmp_path)))
        expect(page.locator("#train-dataset input")).to_have_value("browser-set", timeout=60_000)
        page.locator("#train-name textarea, #train-name input").first.fill("browser-look")
        for elem, value in (("train-steps", "100000"), ("train-window", "9"), ("train-val", "100000")):
            field = page.locator(f"#{elem} input")
            field.fill(value)
            field.press("Tab")
        page.locator("#train-start").click()
        expect(page.locator("#train-status")).to_contain_text("training", timeout=120_000)
        page.wait_for_function("() => /step ([3-9]|\\d\\d+) of/.test(document.querySelector('#train-status').innerText)",
                               timeout=180_000)
        page.locator("#train-loss canvas, #train-loss svg").first.wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "train.png"), full_page=True)
        page.locator("#train-stop").click()
        expect(page.locator("#train-status")).to_contain_text("stopped", timeout=120_000)
        expect(page.locator("#train-checkpoint input, #train-checkpoint textarea").first).to_have_value(
            __import__("re").compile(r"step_\d+"), timeout=30_000)


def test_toy_compare_with_the_demo_adapters_shows_two_videos_and_look_and_camera(tmp_path_factory):
    """A fresh install on a CPU: no --model (the toy model), the shipped demo adapters, a toy example still."""
    import shutil

    from conftest import ROOT, AppServer

    root = tmp_path_factory.mktemp("toy-app")
    server = AppServer(root / "outputs", model=None)
    shutil.copytree(ROOT / "loras", server.loras)
    try:
        server.wait_ready()
        with browser.page() as page:
            page.goto(server.url)
            expect(page.locator("#model-banner")).to_contain_text("trained on synthetic footage", timeout=60_000)
            page.get_by_role("tab", name="Compare").click()
            _choose(page, "cmp-style", "toy-teal-orange")
            _choose(page, "cmp-motion", "toy-pan-right")
            page.locator("#cmp-image input[type=file]").set_input_files(str(ROOT / "assets" / "toy" / "toy1.png"))
            page.locator("#cmp-prompt textarea").fill("a purple circle, a white square and a yellow square on a "
                                                      "mottled red and brown texture")
            page.locator("#cmp-run").click()
            base = browser.wait_for_playable_video(page, "#cmp-base")
            tuned = browser.wait_for_playable_video(page, "#cmp-tuned")
            assert base["duration"] > 0 and tuned["duration"] > 0 and base["src"] != tuned["src"]
            table = page.locator("#cmp-table")
            expect(table).to_contain_text("camera dx", timeout=60_000)
            expect(table).to_contain_text("look distance tuned vs base")
    finally:
        server.stop()
