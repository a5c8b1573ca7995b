"""A corpus of bad inputs, through the CLI and through the running app's API.

Each must be answered with a clear one-line message naming the problem, no
traceback may reach the user, and nothing on disk may change.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cinescene import cli, media

from conftest import make_still

PNG_BOMB_SIDE = 20_000  # 400 MP of one colour: a few kB compressed


def snapshot(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        if root.exists():
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-files")
    f = {"good": make_still(root / "good.png")}
    (root / "text.png").write_text("I am text")
    f["text"] = root / "text.png"
    data = f["good"].read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 3])
    f["cut"] = root / "cut.png"
    Image.new("1", (PNG_BOMB_SIDE, PNG_BOMB_SIDE)).save(root / "bomb.png", optimize=True)
    f["bomb"] = root / "bomb.png"
    Image.new("RGB", (8, 8)).save(root / "dot.png")
    f["dot"] = root / "dot.png"
    torch.save({"w": torch.zeros(2)}, root / "lora.ckpt")
    f["pickle"] = root / "lora.ckpt"
    torch.save({"w": torch.zeros(2)}, root / "renamed.safetensors")
    f["renamed_pickle"] = root / "renamed.safetensors"
    (root / "lora.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    f["truncated"] = root / "lora.safetensors"
    frames = (np.random.default_rng(0).random((9, 32, 32, 3)) * 255).astype(np.uint8)
    f["video"] = media.write_video(frames, root / "ok.mp4")
    f["video5"] = media.write_video(frames[:5], root / "five.mp4")
    (root / "junk.mp4").write_bytes(b"\x00" * 500)
    f["junk_video"] = root / "junk.mp4"
    with zipfile.ZipFile(root / "evil.zip", "w") as zf:
        zf.writestr("../outside.txt", "x")
    f["evil_zip"] = root / "evil.zip"
    (root / "notzip.zip").write_bytes(b"nope")
    f["not_zip"] = root / "notzip.zip"
    (root / "set.jsonl").write_text('{"image": "missing.png", "prompt": "x"}\n')
    f["bad_set"] = root / "set.jsonl"
    (root / "empty_data").mkdir()
    f["empty_data"] = root / "empty_data"
    return f


SAMPLE = ["sample", "--model", "tiny", "--steps", "1", "--frames", "5", "--height", "32", "--width", "32",
          "--prompt", "x"]

CLI_CASES = {
    "missing image": (["--image", "{tmp}/nope.png"], "image not found"),
    "not an image": (["--image", "{text}"], "not an image"),
    "truncated image": (["--image", "{cut}"], "damaged or truncated"),
    "decompression bomb": (["--image", "{bomb}"], "decompression-bomb"),
    "image too small": (["--image", "{dot}"], "at least 16"),
    "empty prompt": (["--prompt", " "], "prompt is empty"),
    "prompt too long": (["--prompt", "x" * 3000], "limit is 2000"),
    "frames not 4k+1": (["--frames", "6"], "4k+1"),
    "frames over 241": (["--frames", "245"], "at most 241"),
    "steps below 1": (["--steps", "0"], "steps must be"),
    "height not multiple": (["--height", "100"], "multiple of 16"),
    "width too large": (["--width", "2048"], "at most 1280"),
    "output folder missing": (["--out", "{tmp}/no/dir/x.mp4"], "output folder does not exist"),
    "output not mp4": (["--out", "{tmp}/x.gif"], ".mp4"),
    "unknown adapter": (["--style", "ghost"], "no adapter named"),
    "hostile adapter name": (["--motion", "../../etc/passwd"], "path separator"),
    "bad strength": (["--style", "x:loud"], "--style"),
    "unknown attention": (["--attention", "warp"], "unknown attention backend"),
    "missing attention package": (["--attention", "flash"], "not available here"),
    "bad cache threshold": (["--cache", "first-block", "--cache-threshold", "0"], "cache threshold"),
    "magcache without ratios": (["--cache", "magcache"], "calibrate"),
    "ratios file missing": (["--cache", "magcache", "--mag-ratios", "{tmp}/none.json"], "cannot read MagCache"),
    "seed negative": (["--seed", "-1"], "seed must be"),
    "not a number": (["--steps", "many"], "invalid int value"),
}

OTHER_CLI_CASES = {
    "import a pickle": (["adapters", "import", "{pickle}", "--kind", "style", "--base", "tiny"], "pickle"),
    "import truncated": (["adapters", "import", "{truncated}", "--kind", "style", "--base", "tiny"],
                         "not a valid safetensors"),
    "import hostile name": (["adapters", "import", "{truncated}", "--kind", "style", "--name", "a/b"],
                            "path separator"),
    "remove unknown": (["adapters", "remove", "ghost"], "no adapter named"),
    "metrics unreadable": (["metrics", "{junk_video}"], "not a readable video"),
    "metrics mismatch": (["metrics", "{video}", "{video5}", "--metric-weights", "random"], "differ"),
    "eval bad set": (["eval", "--model", "tiny", "--set", "{bad_set}", "--out", "{tmp}/e"], "image not found"),
    "train empty data": (["train", "--model", "tiny", "--data", "{empty_data}", "--name", "t"], "no usable"),
    "train bad rank": (["train", "--data", "{empty_data}", "--name", "t", "--rank", "0"], "rank"),
    "train motion under style outside both": (["train", "--data", "{empty_data}", "--name", "t", "--stage", "motion",
                                                "--motion-under-style"], "--style-adapter"),
    "plan bad frames": (["plan", "--frames", "80"], "4k+1"),
}


def run_cli(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def _fill(items, files, tmp):
    return [item.format(tmp=tmp, **{k: str(v) for k, v in files.items()}) for item in items]


@pytest.mark.parametrize("case", list(CLI_CASES) + list(OTHER_CLI_CASES))
def test_cli_bad_input(case, files, tmp_path, capsys):
    loras = tmp_path / "loras"
    if case in CLI_CASES:
        override, message = CLI_CASES[case]
        args = {"--image": str(files["good"]), "--out": str(tmp_path / "out.mp4")}
        argv = [*SAMPLE, "--loras", str(loras), *[x for pair in args.items() for x in pair], *override]
    else:
        override, message = OTHER_CLI_CASES[case]
        argv = [*override, *(["--loras", str(loras)] if override[0] in ("adapters",) else [])]
    argv = _fill(argv, files, tmp_path)
    before = snapshot(tmp_path, files["good"].parent)
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert snapshot(tmp_path, files["good"].parent) == before


def _gen(**changes):
    from test_ui import GEN_DEFAULTS

    return {**GEN_DEFAULTS, **changes}


API_CASES = {
    "no image": ("/generate", lambda f: _gen(image=None), "no image"),
    "not an image": ("/generate", lambda f: _gen(image="text"), "not an image"),
    "truncated image": ("/generate", lambda f: _gen(image="cut"), "damaged or truncated"),
    "decompression bomb": ("/generate", lambda f: _gen(image="bomb"), "decompression-bomb"),
    "empty prompt": ("/generate", lambda f: _gen(prompt=""), "prompt is empty"),
    "frames": ("/generate", lambda f: _gen(frames=6), "4k+1"),
    "steps": ("/generate", lambda f: _gen(steps=0), "less than minimum value 1"),
    "height": ("/generate", lambda f: _gen(height=100), "multiple of 16"),
    "width": ("/generate", lambda f: _gen(width=4096), "at most 1280"),
    "seed empty": ("/generate", lambda f: _gen(seed=None), "seed is empty"),
    "unknown adapter": ("/generate", lambda f: _gen(style="ghost"), "no adapter named"),
    "hostile adapter": ("/generate", lambda f: _gen(motion="../x"), "path separator"),
    "unknown preset": ("/generate", lambda f: _gen(preset="4K"), "4K"),
    "unknown cache": ("/generate", lambda f: _gen(cache="warp"), "warp"),
    "missing attention package": ("/generate", lambda f: _gen(attention="flash"), "not available here"),
    "compare without adapters": ("/compare", lambda f: _gen(), "nothing to compare"),
    "import pickle": ("/import_adapter", lambda f: dict(file="pickle", kind="style", name="", description="",
                                                        strength=1.0), "Invalid file type"),
    "import renamed pickle": ("/import_adapter", lambda f: dict(file="renamed_pickle", kind="style", name="",
                                                                description="", strength=1.0), "pickle"),
    "import truncated": ("/import_adapter", lambda f: dict(file="truncated", kind="style", name="", description="",
                                                           strength=1.0), "not a valid safetensors"),
    "import hostile name": ("/import_adapter", lambda f: dict(file="truncated", kind="style", name="..",
                                                              description="", strength=1.0), "path separator"),
    "import nothing": ("/import_adapter", lambda f: dict(file=None, kind="style", name="", description="",
                                                         strength=1.0), "no file"),
    "remove nothing": ("/remove_adapter", lambda f: dict(name=None), "choose an adapter"),
    "zip with ..": ("/upload_dataset", lambda f: dict(file="evil_zip"), "'..'"),
    "not a zip": ("/upload_dataset", lambda f: dict(file="not_zip"), "not a readable zip"),
    "train without dataset": ("/train_start", lambda f: _train(dataset=None), "choose a dataset"),
    "train hostile dataset": ("/train_start", lambda f: _train(dataset=".."), "dataset name"),
    "train bad name": ("/train_start", lambda f: _train(name="a/b"), "path separator"),
}


def _train(**changes):
    return {"dataset": "nope", "stage": "style", "name": "ok", "style_adapter": "none", "rank": 8, "alpha": 16,
            "learning_rate": 3e-5, "steps": 10, "grad_accum": 4, "val_every": 200, "patience": 5, "window": 33,
            **changes}


@pytest.mark.parametrize("case", list(API_CASES))
def test_app_bad_input(case, files, app_client, app_server):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    endpoint, build, message = API_CASES[case]
    kwargs = build(files)
    if endpoint in ("/generate", "/compare"):
        kwargs.setdefault("image", "good")
    for key in ("image", "file"):
        if kwargs.get(key) is not None:  # a key of the files fixture, sent as an upload
            kwargs[key] = handle_file(str(files[kwargs[key]]))
    roots = (app_server.outputs, app_server.loras, app_server.datasets, app_server.runs)
    before = snapshot(*roots)
    with pytest.raises(AppError) as info:
        app_client.predict(**kwargs, api_name=endpoint)
    text = str(info.value)
    assert message in text, text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert snapshot(*roots) == before
    assert not (app_server.datasets.parent / "outside.txt").exists()


def test_corpus_is_big_enough():
    assert len(CLI_CASES) + len(OTHER_CLI_CASES) >= 20 and len(API_CASES) >= 20
