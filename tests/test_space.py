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
    server = AppServer(root / "outputs", env=subprocess_env(SPACE_ID="someone/cinescene", CINESCENE_MAX_UPLOAD="300kb"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_cpu_space_serves_a_tiny_generation(cpu_space, still):
    from gradio_client import Client, handle_file
    from test_ui import GEN_DEFAULTS

    client = Client(cpu_space.url, verbose=False)
    video, record = client.predict(image=handle_file(str(still)), **GEN_DEFAULTS, api_name="/generate")
    assert record["model"]["id"] == "tiny" and video.endswith(".mp4")
    config = json.loads(urllib.request.urlopen(cpu_space.url + "config").read())
    assert "noise" in json.dumps(config)  # the banner is on the page


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


def test_zero_gpu_space_runs_gpu_work_inside_spaces_gpu(tmp_path, still):
    from gradio_client import Client, handle_file
    from test_ui import GEN_DEFAULTS

    log = tmp_path / "spaces.log"
    env = subprocess_env(SPACE_ID="someone/cinescene", SPACES_ZERO_GPU="true", FAKE_SPACES_LOG=str(log))
    env["PYTHONPATH"] = f"{ROOT / 'tests' / 'fake_spaces'}:{env['PYTHONPATH']}"
    server = AppServer(tmp_path / "outputs", env=env)
    try:
        server.wait_ready()
        client = Client(server.url, verbose=False)
        client.predict(image=handle_file(str(still)), **GEN_DEFAULTS, api_name="/generate")
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert calls and calls[0]["function"] == "handler" and 60 <= calls[0]["duration"] <= 300
        config = json.loads(urllib.request.urlopen(server.url + "config").read())
        assert "Training is off on this Space" in json.dumps(config)
    finally:
        server.stop()
