"""The app as a Hugging Face Space: CPU Space smoke test, ZeroGPU wiring, and the front matter."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
import yaml

from conftest import ROOT, AppServer, subprocess_env


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md has no Space front matter"
    return yaml.safe_load(match.group(1))


def test_front_matter_matches_the_pinned_gradio():
    meta = front_matter()
    pinned = re.search(r"^gradio==([\w.]+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pinned
    assert (ROOT / meta["app_file"]).is_file() and len(meta["short_description"]) <= 60
    assert meta["tags"] and meta["title"]


@pytest.fixture(scope="module")
def cpu_space(tmp_path_factory):
    root = tmp_path_factory.mktemp("space")
    # A small upload limit, so the test can cross it with a small file (the Space's default is 200mb).
    # No --model, as a free CPU Space starts: the toy model.
    server = AppServer(root / "outputs", env=subprocess_env(SPACE_ID="someone/cinescene", CINESCENE_MAX_UPLOAD="300kb"),
                       model=None)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_cpu_space_serves_a_toy_generation(cpu_space, still):
    from gradio_client import Client, handle_file
    from test_ui import GEN_DEFAULTS

    client = Client(cpu_space.url, verbose=False)
    video, record = client.predict(image=handle_file(str(still)), **{**GEN_DEFAULTS, "preset": "toy", "height": 64,
                                                                    "width": 112}, api_name="/generate")
    assert record["model"]["id"] == "toy" and video.endswith(".mp4")
    config = json.loads(urllib.request.urlopen(cpu_space.url + "config").read())
    assert "trained on synthetic footage" in json.dumps(config)  # the banner says what the model is


def test_uploads_over_the_limit_are_refused_by_the_server(cpu_space, tmp_path):
    import httpx

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(400 * 1024))
    reply = httpx.post(cpu_space.url + "gradio_api/upload", files={"files": ("big.png", big.read_bytes())})
    assert reply.status_code == 413 and "maximum allowed size of 307200 bytes" in reply.text
    assert not list(cpu_space.outputs.rglob("big*"))


def test_cpu_space_caps_training(cpu_space):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(cpu_space.url, verbose=False)
    with pytest.raises(AppError, match="at most 50 steps"):
        client.predict(dataset="anything", stage="style", name="x", style_adapter="none", rank=8, alpha=16,
                       learning_rate=3e-5, steps=500, grad_accum=4, val_every=200, patience=5, window=33,
                       api_name="/train_start")


def test_a_space_fixes_the_engine_for_every_visitor(cpu_space, still):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from test_ui import GEN_DEFAULTS

    client = Client(cpu_space.url, verbose=False)
    for change in (dict(memory="group-offload"), dict(fp8=True), dict(compile_blocks=True), dict(vae_tiling=True),
                   dict(attention="sage")):
        with pytest.raises(AppError, match="engine of this app is fixed by its operator"):
            client.predict(image=handle_file(str(still)), **{**GEN_DEFAULTS, **change}, api_name="/generate")
    config = json.dumps(json.loads(urllib.request.urlopen(cpu_space.url + "config").read()))
    assert "The engine is fixed by whoever started this app: memory none, fp8 off" in config


# A ZeroGPU Space on the tiny model with a very slow GPU assumed, so that its small requests can be too long.
SLOW_TFLOPS = 5e-6


def zero_gpu(**changes):
    from cinescene import deploy

    return deploy.ZeroGpu(tflops=SLOW_TFLOPS, **changes)


@pytest.fixture(scope="module")
def zero_gpu_space(tmp_path_factory):
    root = tmp_path_factory.mktemp("zerogpu")
    log = root / "spaces.log"
    log.touch()
    env = subprocess_env(SPACE_ID="someone/cinescene", SPACES_ZERO_GPU="true", FAKE_SPACES_LOG=str(log),
                         CINESCENE_ZERO_GPU_TFLOPS=str(SLOW_TFLOPS))
    env["PYTHONPATH"] = f"{ROOT / 'tests' / 'fake_spaces'}:{env['PYTHONPATH']}"
    server = AppServer(root / "outputs", env=env)
    try:
        server.wait_ready()
        server.spaces_log = log
        yield server
    finally:
        server.stop()


def gpu_calls(server) -> list[dict]:
    return [json.loads(line) for line in server.spaces_log.read_text().splitlines()]


def test_zero_gpu_space_runs_gpu_work_inside_spaces_gpu(zero_gpu_space, still):
    from gradio_client import Client, handle_file
    from test_ui import GEN_DEFAULTS

    from cinescene import deploy

    client = Client(zero_gpu_space.url, verbose=False)
    before = len(gpu_calls(zero_gpu_space))
    client.predict(image=handle_file(str(still)), **GEN_DEFAULTS, api_name="/generate")
    calls = gpu_calls(zero_gpu_space)[before:]
    expected = zero_gpu().seconds("tiny", deploy.Shot(5, 32, 48, 2, cfg=True))
    assert [c["function"] for c in calls] == ["handler"] and calls[0]["duration"] == expected
    config = json.loads(urllib.request.urlopen(zero_gpu_space.url + "config").read())
    assert "Training is off on this Space" in json.dumps(config)


def test_zero_gpu_refuses_a_request_that_does_not_fit_before_any_gpu_work(zero_gpu_space, still):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from test_ui import GEN_DEFAULTS

    from cinescene import deploy

    client = Client(zero_gpu_space.url, verbose=False)
    big = {**GEN_DEFAULTS, "frames": 81, "steps": 40}
    expected = zero_gpu().refusal("tiny", deploy.Shot(81, 32, 48, 40, cfg=True), speed=(None, 4))
    assert expected is not None
    before = len(gpu_calls(zero_gpu_space))
    with pytest.raises(AppError) as info:
        client.predict(image=handle_file(str(still)), **big, api_name="/generate")
    assert str(info.value).strip() == expected and len(str(info.value).strip().splitlines()) == 1
    assert len(gpu_calls(zero_gpu_space)) == before  # refused before @spaces.GPU was entered
    proposed = int(re.search(r"at most (\d+) frames at 40 steps", expected).group(1))
    video, record = client.predict(image=handle_file(str(still)), **{**big, "frames": proposed},
                                   api_name="/generate")
    assert record["settings"]["frames"] == proposed
    calls = gpu_calls(zero_gpu_space)[before:]
    assert len(calls) == 1 and calls[0]["duration"] <= deploy.ZERO_GPU_MAX_SECONDS


def test_zero_gpu_defaults_fit_one_call(zero_gpu_space):
    from cinescene import architecture, deploy, media
    from cinescene.settings import PRESETS

    config = json.loads(urllib.request.urlopen(zero_gpu_space.url + "config").read())
    props = [c.get("props", {}) for c in config["components"]]
    frames = [p["value"] for p in props if p.get("label") == "Frames (4k+1)"]
    steps = [p["value"] for p in props if p.get("label") == "Steps"]
    official = architecture.defaults_for("tiny")
    height, width = media.size_for_area(480 / 832, PRESETS[official.preset].area)
    gpu = zero_gpu()
    assert not gpu.fits("tiny", deploy.Shot(official.frames, height, width, official.steps, True))
    assert len(frames) == len(steps) == 3  # Generate, Compare (two videos per call), Sweep (a 2 x 2 grid)
    for generations, f, s in zip((1, 2, 4), frames, steps):
        assert f < official.frames and gpu.fits("tiny", deploy.Shot(f, height, width, s, True, generations))
