"""The app through its HTTP API (gradio_client) against a real ``python app.py`` on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from cinescene import media

from conftest import AppServer, subprocess_env

GEN_DEFAULTS = dict(prompt="a lighthouse at dusk", negative_prompt="", preset="preview", frames=5, steps=2,
                    guidance=5.0, seed=3, shift=None, height=32, width=48, style="none", style_strength=1.0,
                    motion="none", motion_strength=1.0, style_end=None, motion_end=None, speed="none", cache="none",
                    cache_threshold=None, memory="none", fp8=False, attention="native", compile_blocks=False,
                    vae_tiling=False)


def generate(client, image, **changes):
    from gradio_client import handle_file

    return client.predict(image=handle_file(str(image)) if image else None, **{**GEN_DEFAULTS, **changes},
                          api_name="/generate")


def test_every_event_has_an_api_name(app_client):
    endpoints = app_client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/generate", "/randomize_seed"} <= set(endpoints)


def test_generate_returns_video_and_record(app_client, app_server, still):
    video_path, record = generate(app_client, still)
    video = media.read_video(video_path)
    assert video.num_frames == 5 and video.size == (32, 48)
    assert record["settings"]["seed"] == 3 and record["model"]["id"] == "tiny"
    written = list(app_server.outputs.glob("sample-*/video.json"))
    assert any(json.loads(p.read_text())["settings"] == record["settings"] for p in written)


def test_randomize_seed(app_client):
    seeds = {app_client.predict(api_name="/randomize_seed") for _ in range(3)}
    assert all(isinstance(s, (int, float)) and 0 <= s < 2**32 for s in seeds) and len(seeds) > 1


@pytest.mark.parametrize(
    "changes, message",
    [(dict(prompt=""), "prompt is empty"), (dict(frames=6), "4k+1"), (dict(height=40), "multiple of 16")],
)
def test_bad_input_is_a_clear_error(app_client, still, changes, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message.replace("+", r"\+")):
        generate(app_client, still, **changes)


def test_missing_image_is_a_clear_error(app_client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no image"):
        generate(app_client, None)


def test_progress_callback_moves_per_step():
    from cinescene import ui

    calls = []

    class FakeProgress:
        def __call__(self, progress, desc=None, total=None, unit="steps"):
            calls.append(progress)

    on_event = ui.progress_callback(FakeProgress(), "denoising")
    for i in range(1, 4):
        on_event({"type": "progress", "task": "denoising", "done": i, "total": 3, "timestep": 0.0, "elapsed": 0.0})
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_import_then_generate_with_adapters(app_client, still, tmp_path):
    from gradio_client import handle_file

    from cinescene import loading

    import lora_fixtures as lf

    tr = loading.build_tiny_pipeline().transformer
    style = lf.save(lf.comfyui_layout(lf.random_lora(tr, lf.STYLE, seed=11), alpha=4.0), tmp_path / "grade.safetensors")
    motion = lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.MOTION, seed=12)), tmp_path / "push.safetensors")
    message = app_client.predict(file=handle_file(str(style)), kind="style", name="api-grade", description="warm",
                                 strength=1.0, api_name="/import_adapter")
    assert "api-grade" in message and "hot-swappable" in message
    app_client.predict(file=handle_file(str(motion)), kind="motion", name="api-push", description="",
                       strength=1.0, api_name="/import_adapter")
    table = app_client.predict(api_name="/list_adapters")[0]
    assert {"api-grade", "api-push"} <= {row[0] for row in table["data"]}
    # Full deltas no LoRA can hold: refused by name, or left out when the box is ticked (as --drop-full-deltas).
    sd, _ = lf.published_speed_lora(tr, full_deltas=0.01)
    speed = lf.save(sd, tmp_path / "causvid.safetensors")
    with pytest.raises(Exception, match="blocks.0.diff_m"):
        app_client.predict(file=handle_file(str(speed)), kind="speed", name="api-speed", description="",
                           strength=1.0, drop_full_deltas=False, api_name="/import_adapter")
    message = app_client.predict(file=handle_file(str(speed)), kind="speed", name="api-speed", description="",
                                 strength=1.0, drop_full_deltas=True, api_name="/import_adapter")
    assert "Left out on request" in message
    _, record = generate(app_client, still, style="api-grade", style_strength=0.7, motion="api-push")
    assert [(a["name"], a["strength"]) for a in record["adapters"]] == [("api-grade", 0.7), ("api-push", 1.0)]


def test_import_refuses_hostile_input(app_client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(b"\x80\x04not really")
    with pytest.raises(AppError, match="pickle"):
        app_client.predict(file=handle_file(str(evil)), kind="style", name="", description="", strength=1.0,
                           api_name="/import_adapter")
    ok = tmp_path / "fine.safetensors"
    ok.write_bytes(b"x")
    with pytest.raises(AppError, match="path separator"):
        app_client.predict(file=handle_file(str(ok)), kind="style", name="../../x", description="", strength=1.0,
                           api_name="/import_adapter")


def test_compare_through_the_api(app_client, still, tmp_path):
    from gradio_client import handle_file

    from cinescene import loading

    import lora_fixtures as lf

    tr = loading.build_tiny_pipeline().transformer
    style = lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE, seed=31)), tmp_path / "cmp-look.safetensors")
    app_client.predict(file=handle_file(str(style)), kind="style", name="cmp-look", description="", strength=1.0,
                       api_name="/import_adapter")
    base, tuned, table, lpips_plot, clip_plot, camera_plot, notice, report = app_client.predict(
        image=handle_file(str(still)), **{**GEN_DEFAULTS, "style": "cmp-look"}, api_name="/compare")
    assert media.read_video(base).num_frames == media.read_video(tuned).num_frames == 5
    metrics_rows = {row[0]: row for row in table["data"]}
    assert "LPIPS base vs tuned" in metrics_rows and "NO" in metrics_rows["CLIP-SIM text"][-1]
    assert "camera motion" in metrics_rows and metrics_rows["look distance tuned vs base"][-1] == "yes"
    assert {row[2] for row in camera_plot["data"]} == {"base dx", "base dy", "tuned dx", "tuned dy"}
    assert "Uncalibrated" in notice
    assert json.loads(open(report).read())["adapters"][0]["name"] == "cmp-look"


def test_blind_review_through_the_api(app_client, app_server, still, tmp_path):
    from pathlib import Path

    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from cinescene import loading

    import lora_fixtures as lf

    tr = loading.build_tiny_pipeline().transformer
    style = lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE, seed=33)), tmp_path / "blind-look.safetensors")
    app_client.predict(file=handle_file(str(style)), kind="style", name="blind-look", description="", strength=1.0,
                       api_name="/import_adapter")
    client = Client(app_client.src, verbose=False)  # a session of its own: the pair waiting for a choice is its own
    shown = client.predict(image=handle_file(str(still)), **{**GEN_DEFAULTS, "style": "blind-look"},
                           api_name="/compare_blind")
    video_a, video_b, look, motion, note = [x["value"] if isinstance(x, dict) and "__type__" in x else x
                                            for x in shown]  # some outputs are updates
    assert (Path(video_a).name, Path(video_b).name) == ("A.mp4", "B.mp4")
    assert look is None and motion is None and not note
    assert "base" not in json.dumps(shown) and "tuned" not in json.dumps(shown)  # nothing says which is which
    (folder,) = [p.parent for p in app_server.outputs.glob("compare-*/metrics.json")
                 if json.loads(p.read_text())["adapters"][0]["name"] == "blind-look"]
    sides = {side: (folder / f"{side}.mp4").read_bytes() for side in ("base", "tuned")}
    assert sides["base"] != sides["tuned"]
    a_side = next(side for side, data in sides.items() if data == Path(video_a).read_bytes())
    assert Path(video_b).read_bytes() == sides["tuned" if a_side == "base" else "base"]

    with pytest.raises(AppError, match="no choice for the better motion"):
        client.predict(look="A", motion=None, note="", reviewer="", api_name="/blind_choice")
    with pytest.raises(AppError, match="no blind pair is waiting"):  # another session has no pair to judge
        Client(app_client.src, verbose=False).predict(look="A", motion="A", note="", reviewer="",
                                                       api_name="/blind_choice")
    a_label, b_label, _, _, reveal, rates, table, *_, report = client.predict(
        look="A", motion="tie", note="warmer", reviewer="api", api_name="/blind_choice")
    (line,) = [json.loads(x) for x in (folder / "reviews.jsonl").read_text().splitlines()]
    assert line["preferred"] == {"look": a_side, "motion": "tie"}  # the side A really was
    assert line["shown"]["A"] == a_side and line["clicked"] == {"look": "A", "motion": "tie"}
    assert line["blind"] and line["note"] == "warmer" and line["reviewer"] == "api"
    assert reveal.startswith("**A was the " + ("tuned take" if a_side == "tuned" else "base model"))
    look_row = rates["data"][0]  # adapter, question, win rate, interval, tuned / tie / base, reviews, blind
    assert look_row[:2] == ["blind-look (style)", "look"] and look_row[5:] == [1, 1]
    assert look_row[2] == ("100%" if a_side == "tuned" else "0%")
    assert look_row[4] == ("1 / 0 / 0" if a_side == "tuned" else "0 / 0 / 1")
    assert "LPIPS base vs tuned" in {row[0] for row in table["data"]}
    assert json.loads(open(report).read())["adapters"][0]["name"] == "blind-look"
    with pytest.raises(AppError, match="no blind pair is waiting"):  # each pair is judged once
        client.predict(look="B", motion="B", note="", reviewer="", api_name="/blind_choice")


def test_sweep_through_the_api(app_client, still, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from cinescene import loading

    import lora_fixtures as lf

    tr = loading.build_tiny_pipeline().transformer
    style = lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE, seed=32)), tmp_path / "swp-look.safetensors")
    app_client.predict(file=handle_file(str(style)), kind="style", name="swp-look", description="", strength=1.0,
                       api_name="/import_adapter")
    shot = {**GEN_DEFAULTS, "style": "swp-look", "style_strength": 0.3}  # the sliders do not apply to a sweep
    grid, table, look_plot, camera_plot, report = app_client.predict(
        image=handle_file(str(still)), **shot, style_strengths="0, 1", motion_strengths="0", ramp="constant",
        api_name="/sweep")
    assert [(row[0], row[1]) for row in table["data"]] == [(0, 0), (1, 0)]
    assert table["data"][0][2] == 0 and table["data"][1][2] > 0  # look distance to the 0/0 cell
    assert media.read_video(grid).num_frames == 5
    assert {row[2] for row in look_plot["data"]} == {"motion 0"}
    assert json.loads(open(report).read())["sweep"]["style_strengths"] == [0.0, 1.0]
    with pytest.raises(AppError, match="is not a list of numbers"):
        app_client.predict(image=handle_file(str(still)), **shot, style_strengths="0, lots", motion_strengths="0",
                           ramp="constant", api_name="/sweep")


def test_compare_without_adapters_is_a_clear_error(app_client, still):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="nothing to compare"):
        app_client.predict(image=handle_file(str(still)), **GEN_DEFAULTS, api_name="/compare")


def test_speed_and_memory_settings_reach_the_record(app_client, still):
    _, record = generate(app_client, still, cache="taylorseer", fp8=True, memory="group-offload")
    assert record["speed"]["cache"]["kind"] == "taylorseer"
    assert record["model"]["fp8"] is True and record["model"]["memory"] == "group-offload"
    _, plain = generate(app_client, still)  # back to the app's own engine settings
    assert plain["model"]["fp8"] is False and plain["speed"]["cache"]["kind"] == "none"


@pytest.fixture(scope="module")
def lan_server(tmp_path_factory):
    """The app as a crew runs it on a shared workstation: bound to every interface, behind a login."""
    server = AppServer(tmp_path_factory.mktemp("lan") / "outputs", extra_args=["--host", "0.0.0.0"],
                       env=subprocess_env(CINESCENE_AUTH="crew:right:pass"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_auth_refuses_a_wrong_password(lan_server):
    import httpx
    from gradio_client import Client

    with pytest.raises(ValueError, match="Could not login"):
        Client(lan_server.url, auth=("crew", "wrong"), verbose=False)
    reply = httpx.post(lan_server.url + "login", data={"username": "crew", "password": "wrong"})
    assert reply.status_code == 400 and "Incorrect credentials" in reply.text
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(lan_server.url + "config")
    assert info.value.code == 401
    Client(lan_server.url, auth=("crew", "right:pass"), verbose=False)  # the password may hold a colon


def test_a_lan_bind_fixes_the_engine(lan_server, still):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(lan_server.url, auth=("crew", "right:pass"), verbose=False)
    _, record = generate(client, still)  # the app's own engine values, as the hidden widgets send them
    assert record["model"]["memory"] == "none" and record["model"]["fp8"] is False
    with pytest.raises(AppError, match="fixed by its operator .*cannot ask for memory 'model-offload'"):
        generate(client, still, memory="model-offload")
    with pytest.raises(AppError, match="cannot ask for compile True"):
        generate(client, still, compile_blocks=True)


# -- in-process: the tabs' own functions and the built Blocks, without a server ----------------------------------


def test_example_shots_read_prompts_txt(tmp_path):
    from cinescene.ui import generate

    rows = generate.example_shots()
    assert [r[0].rsplit("/", 1)[-1] for r in rows] == ["lighthouse.jpg", "neon_street.jpg", "desert_road.jpg"]
    assert rows[0][1].startswith("The lighthouse beam sweeps")
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "prompts.txt").write_text("# comment\ta line\na.png\tfirst\ngone.png\tmissing still\nno tab\n")
    assert generate.example_shots(tmp_path) == [[str(tmp_path / "a.png"), "first"]]
    assert generate.example_shots(tmp_path / "nowhere") == []


@pytest.fixture(scope="module")
def built_app(tmp_path_factory):
    from cinescene import ui
    from cinescene.adapters import AdapterLibrary
    from cinescene.settings import ModelSpec

    root = tmp_path_factory.mktemp("inproc")
    return ui.build_app(ui.AppContext(spec=ModelSpec(model="tiny"), outputs_root=root / "outputs",
                                      library=AdapterLibrary(root / "loras"), datasets_root=root / "datasets",
                                      runs_root=root / "runs"))


def test_examples_fill_the_shot_and_never_run_the_model(built_app):
    import gradio as gr

    datasets = {b.elem_id: b for b in built_app.blocks.values() if isinstance(b, gr.Dataset)}
    assert set(datasets) == {"gen-examples", "cmp-examples", "swp-examples"}
    for prefix, dataset in datasets.items():
        assert len(dataset.samples) == 3 and dataset.samples[0][1].startswith("The lighthouse beam")
        triggered = [fn for fn in built_app.fns.values() if any(t[0] == dataset._id for t in fn.targets)]
        # One event, which only copies the example into the inputs; nothing is chained after it.
        assert [fn.api_name for fn in triggered] == [f"{prefix.split('-')[0]}_load_example"]
        assert not [fn for fn in built_app.fns.values() if fn.trigger_after == triggered[0]._id]
    # The only events that generate are the buttons'.
    runs = {fn.api_name: fn for fn in built_app.fns.values()
            if fn.api_name in ("generate", "compare", "compare_blind", "sweep")}
    buttons = {b._id for b in built_app.blocks.values()
               if getattr(b, "elem_id", None) in ("gen-run", "cmp-run", "cmp-run-blind", "swp-run")}
    assert len(runs) == 4 and all({t[0] for t in fn.targets} <= buttons for fn in runs.values())


def test_train_tab_offers_the_validation_score(built_app):
    import gradio as gr

    radio = next(b for b in built_app.blocks.values() if getattr(b, "elem_id", None) == "train-val-score")
    assert isinstance(radio, gr.Radio) and radio.value == "lpips"
    assert [c[1] for c in radio.choices] == ["lpips", "look"]


def test_make_the_demo_dataset_picks_a_free_name(tmp_path):
    from cinescene.settings import ModelSpec
    from cinescene.toy import footage
    from cinescene.training.dataset import scan
    from cinescene.ui import AppContext
    from cinescene.ui.train_tab import make_demo_dataset

    ctx = AppContext(spec=ModelSpec(model="tiny"), datasets_root=tmp_path / "datasets")  # not there yet
    status, update = make_demo_dataset(ctx)
    assert update["value"] == "toy-demo" and "toy-demo" in update["choices"] and "**toy-demo**" in status
    assert f"{footage.DEMO.clips} clips and {footage.DEMO.stills} stills" in status
    found = scan(tmp_path / "datasets" / "toy-demo", stage="motion", window=17, val_fraction=0.1)
    assert len(found.train) + len(found.validation) == footage.DEMO.clips + footage.DEMO.stills
    _, again = make_demo_dataset(ctx)
    assert again["value"] == "toy-demo-2" and again["choices"] == ["toy-demo", "toy-demo-2"]


def test_resume_continues_a_run_by_name_and_refuses_one_that_never_ran(tmp_path, monkeypatch):
    import gradio as gr

    from cinescene.settings import ModelSpec
    from cinescene.ui import AppContext
    from cinescene.ui.train_tab import make_demo_dataset, start_training

    ctx = AppContext(spec=ModelSpec(model="tiny"), datasets_root=tmp_path / "datasets", runs_root=tmp_path / "runs")
    make_demo_dataset(ctx)
    started = []
    monkeypatch.setattr(ctx.runs, "start", lambda config: (started.append(config), config.run_dir())[1])
    monkeypatch.setattr(ctx, "release_gpu", lambda: None)
    form = {"stage": "style", "name": "look", "steps": 10}
    with pytest.raises(gr.Error, match="no run named 'look' to resume"):
        start_training(ctx, "toy-demo", form, resume=True)
    assert not started
    assert start_training(ctx, "toy-demo", form).startswith("Started **look**") and not started[-1].resume
    started[-1].run_dir().mkdir(parents=True)  # what the run leaves behind
    assert start_training(ctx, "toy-demo", form, resume=True).startswith("Resumed **look**")
    assert started[-1].resume and started[-1].name == "look"


def test_camera_plot_frames():
    from cinescene.ui.compare_tab import camera_frames

    def video(pairs):
        return {"camera": {"dx": 0.0, "dy": 0.0, "zoom": 1.0, "label": "static", "pairs": pairs, "calibrated": True}}

    result = {"videos": {"base": video([[1.0, 0.5, 1.0], [2.0, 0.25, 1.0]]), "tuned": video([[-1.0, 0.0, 1.0]] * 2)},
              "pair": {}}
    frame = camera_frames(result)
    base_dx = frame[frame.series == "base dx"]
    assert base_dx.frame.tolist() == [1, 2] and base_dx.value.tolist() == [1.0, 2.0]  # pair (t-1, t) at frame t
    assert frame[frame.series == "base dy"].value.tolist() == [0.5, 0.25]
    assert set(frame.series) == {"base dx", "base dy", "tuned dx", "tuned dy"}


def test_train_status_shows_the_followed_score_and_the_look(monkeypatch):
    from cinescene.settings import ModelSpec
    from cinescene.training import log
    from cinescene.training.runs import RunStatus
    from cinescene.ui import AppContext
    from cinescene.ui.train_tab import VALIDATION_HEADERS, poll

    events = [{"type": "stage_start", "stage": "style", "steps": 10},
              {"type": "validation", "step": 2, "lpips": 0.5, "lpips_std": 0.1, "clip_text": 0.2, "look": 120.0,
               "look_std": 8.0, "camera_dx": 1.5, "camera_dy": -0.25, "camera_zoom": 1.001, "val_score": "look",
               "best": True, "items": 1, "seeds": 2, "calibrated": False},
              {"type": "validation", "step": 4, "lpips": 0.4, "clip_text": 0.2, "best": False}]  # an older log
    ctx = AppContext(spec=ModelSpec(model="tiny"))
    monkeypatch.setattr(ctx.runs, "status", lambda: RunStatus("t", True, None, log.progress(events), events, ""))
    text, _, validations, *_ = poll(ctx)
    assert "step 2, mean look distance 120.0000 ± 8.0000" in text
    assert len(validations[0]) == len(VALIDATION_HEADERS)
    assert validations[0][3:5] == ["120.0000 ± 8.0000", "+1.50, -0.25, 1.0010"]
    assert validations[1][3:5] == ["n/a", "n/a"]


def test_the_adapters_tab_imports_a_wan22_pair_with_its_placement(built_app, tmp_path):
    import gradio as gr

    from cinescene import loading
    from cinescene.adapters import AdapterLibrary
    from cinescene.settings import ModelSpec
    from cinescene.ui import AppContext
    from cinescene.ui.adapters_tab import PLACEMENT, adapter_table, import_adapter

    import lora_fixtures as lf

    radio = next(b for b in built_app.blocks.values() if getattr(b, "elem_id", None) == "ad-placement")
    assert isinstance(radio, gr.Radio) and [c[1] for c in radio.choices] == ["", *PLACEMENT.metadata["choices"]]
    model = loading.load_model(ModelSpec(model="tiny-wan22"))
    ctx = AppContext(spec=ModelSpec(model="tiny-wan22"), library=AdapterLibrary(tmp_path / "loras"))
    ctx.model = lambda spec=None: model  # this test's own model, not the process-wide one
    paths = lf.save_pair(lf.random_pair(model.pipe, lf.STYLE), tmp_path, "teal", naming="ai-toolkit", alpha=4.0)
    message = import_adapter(ctx, str(paths["high_noise"]), "style", "", "", 1.0, False, str(paths["low_noise"]), "")
    assert "**teal**" in message and "a pair placed on both" in message and "hot-swappable" in message
    import_adapter(ctx, str(paths["high_noise"]), "style", "high-half", "", 1.0, False, None, "")
    assert ctx.library.get("high-half").placement == "high_noise"  # its name says which expert it is for
    import_adapter(ctx, str(paths["high_noise"]), "style", "pinned", "", 1.0, False, None, "both")
    assert ctx.library.get("pinned").placement == "both"
    assert {row[0]: row[-1] for row in adapter_table(ctx)} == {"teal": "pair, both", "high-half": "high_noise",
                                                               "pinned": "both"}
    with pytest.raises(gr.Error, match="is named as the low-noise half"):
        import_adapter(ctx, str(paths["low_noise"]), "style", "x", "", 1.0, False, str(paths["high_noise"]), "")
    one = AppContext(spec=ModelSpec(model="tiny"), library=ctx.library)
    one.model = lambda spec=None: loading.load_model(ModelSpec(model="tiny"))
    with pytest.raises(gr.Error, match="a pair is for a two-expert model"):
        import_adapter(one, str(paths["high_noise"]), "style", "y", "", 1.0, False, str(paths["low_noise"]), "")
