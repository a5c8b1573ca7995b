from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cinescene import cli, media
from conftest import ROOT, files_under, make_still, subprocess_env

SMALL = ["--model", "tiny", "--steps", "2", "--frames", "5", "--height", "32", "--width", "48"]


def test_sample_writes_video_and_record(still, tmp_path, capsys):
    out = tmp_path / "shot.mp4"
    code = cli.main(["sample", *SMALL, "--image", str(still), "--prompt", "a lighthouse", "--out", str(out),
                     "--seed", "7"])
    assert code == 0
    assert media.read_video(out).num_frames == 5
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["settings"]["seed"] == 7 and record["settings"]["steps"] == 2
    assert "wrote" in capsys.readouterr().out


def test_progress_bar_counts_steps(still, tmp_path, capsys):
    cli.main(["sample", *SMALL, "--image", str(still), "--prompt", "x", "--out", str(tmp_path / "a.mp4")])
    assert "2/2" in capsys.readouterr().err


def test_default_model_on_cpu_is_tiny_with_a_note(still, tmp_path, capsys):
    code = cli.main(["sample", "--steps", "1", "--frames", "1", "--height", "32", "--width", "32",
                     "--image", str(still), "--prompt", "x", "--out", str(tmp_path / "a.mp4"), "--quiet"])
    assert code == 0
    assert "tiny" in capsys.readouterr().err


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "text.png").write_text("hello, I am not a picture")
    good = make_still(folder / "good.png")
    return folder, good


BAD_CASES = [
    (["--image", "{missing}"], "image not found"),
    (["--image", "{text}"], "not an image"),
    (["--frames", "8"], "4k+1"),
    (["--frames", "245"], "at most 241"),
    (["--steps", "0"], "steps"),
    (["--height", "100"], "multiple of 16"),
    (["--width", "2048"], "at most 1280"),
    (["--prompt", ""], "prompt is empty"),
    (["--out", "{nodir}"], "output folder does not exist"),
    (["--frames", "many"], "invalid int value"),
]


@pytest.mark.parametrize("override, message", BAD_CASES, ids=[" ".join(o) for o, _ in BAD_CASES])
def test_bad_input_exits_2_with_one_line(bad_inputs, tmp_path, capsys, override, message):
    folder, good = bad_inputs
    values = {"missing": str(folder / "nope.png"), "text": str(folder / "text.png"),
              "nodir": str(tmp_path / "no" / "such" / "dir" / "out.mp4")}
    args = {"--image": str(good), "--prompt": "x", "--out": str(tmp_path / "out.mp4")}
    for flag, value in zip(override[::2], override[1::2]):
        args[flag] = value.format(**values)
    argv = ["sample", *SMALL, *[item for pair in args.items() for item in pair]]
    before = files_under(tmp_path)
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert files_under(tmp_path) == before


def run_cli(argv: list[str]) -> int:
    """cli.main's exit code, whether it returns it or argparse raises SystemExit with it."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def test_module_entry_point_in_a_subprocess(still, tmp_path):
    """The real ``python -m cinescene``: exit codes and a clean stderr, offline."""
    ok = subprocess.run([sys.executable, "-m", "cinescene", "sample", *SMALL, "--image", str(still),
                         "--prompt", "x", "--out", str(tmp_path / "a.mp4"), "--quiet"],
                        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "a.mp4").is_file() and (tmp_path / "a.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "cinescene", "sample", "--model", "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers",
                          "--image", str(still), "--prompt", "x", "--out", str(tmp_path / "b.mp4")],
                         cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: could not load model") and len(bad.stderr.strip().splitlines()) == 1
    assert "--model tiny" in bad.stderr
    assert not (tmp_path / "b.mp4").exists()
