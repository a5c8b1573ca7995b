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


def test_adapters_commands_end_to_end(still, tmp_path, capsys):
    import lora_fixtures as lf

    from cinescene import loading

    tr = loading.build_tiny_pipeline().transformer
    style = lf.save(lf.comfyui_layout(lf.random_lora(tr, lf.STYLE, seed=1), alpha=4.0), tmp_path / "Noir Look.safetensors")
    motion = lf.save(lf.kohya_layout(lf.random_lora(tr, lf.ALL, seed=2), alpha=4.0), tmp_path / "dolly.safetensors")
    lib = ["--loras", str(tmp_path / "loras")]
    assert cli.main(["adapters", "import", str(style), "--kind", "style", "--base", "tiny", *lib]) == 0
    assert "imported Noir-Look" in capsys.readouterr().out
    assert cli.main(["adapters", "import", str(motion), "--kind", "motion", "--name", "dolly", "--base", "tiny",
                     *lib]) == 0
    assert "slow load" in capsys.readouterr().out  # musubi files carry every layer, not just self-attention
    assert cli.main(["adapters", "list", "--json", *lib]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["name"], a["kind"]) for a in listed] == [("dolly", "motion"), ("Noir-Look", "style")]
    assert cli.main(["adapters", "rename", "Noir-Look", "noir", *lib]) == 0
    out = tmp_path / "shot.mp4"
    assert cli.main(["sample", *SMALL, "--image", str(still), "--prompt", "x", "--out", str(out), "--quiet",
                     "--style", "noir:0.8", "--motion", "dolly:1:0.5", *lib]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert [(a["slot"], a["name"], a["strength"], a["end_strength"]) for a in record["adapters"]] == \
        [("style", "noir", 0.8, None), ("motion", "dolly", 1.0, 0.5)]
    assert cli.main(["adapters", "export", "noir", "--out", str(tmp_path / "noir_comfy.safetensors"), *lib]) == 0
    assert cli.main(["adapters", "remove", "noir", *lib]) == 0
    capsys.readouterr()
    assert cli.main(["adapters", "list", *lib]) == 0
    assert "noir" not in capsys.readouterr().out.replace("Noir", "")


@pytest.mark.parametrize(
    "flags, message",
    [(["--style", "ghost"], "no adapter named 'ghost'"), (["--style", "x:loud"], "--style"),
     (["--motion", "../../etc:1"], "path separator")],
)
def test_bad_adapter_choices(still, tmp_path, capsys, flags, message):
    code = run_cli(["sample", *SMALL, "--image", str(still), "--prompt", "x", "--out", str(tmp_path / "o.mp4"),
                    "--loras", str(tmp_path / "loras"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()


def test_import_refuses_a_pickle(tmp_path, capsys):
    import torch

    evil = tmp_path / "lora.ckpt"
    torch.save({"a": torch.zeros(1)}, evil)
    code = run_cli(["adapters", "import", str(evil), "--kind", "style", "--base", "tiny",
                    "--loras", str(tmp_path / "loras")])
    assert code == 2 and "pickle" in capsys.readouterr().err
    assert not (tmp_path / "loras").exists() or files_under(tmp_path / "loras") == {}
