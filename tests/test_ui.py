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
    base, tuned, table, lpips_plot, clip_plot, notice, report = app_client.predict(
        image=handle_file(str(still)), **{**GEN_DEFAULTS, "style": "cmp-look"}, api_name="/compare")
    assert media.read_video(base).num_frames == media.read_video(tuned).num_frames == 5
    metrics_rows = {row[0]: row for row in table["data"]}
    assert "LPIPS base vs tuned" in metrics_rows and "NO" in metrics_rows["CLIP-SIM text"][-1]
    assert "Uncalibrated" in notice
    assert json.loads(open(report).read())["adapters"][0]["name"] == "cmp-look"


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
