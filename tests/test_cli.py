from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
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


def test_default_model_on_cpu_is_toy_with_a_note(still, tmp_path, capsys):
    code = cli.main(["sample", "--steps", "1", "--frames", "1", "--height", "32", "--width", "32",
                     "--image", str(still), "--prompt", "x", "--out", str(tmp_path / "a.mp4"), "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert "using the toy model" in err and "Loading" not in err  # no library loading bars
    assert json.loads((tmp_path / "a.json").read_text())["model"]["id"] == "toy"


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
    from cinescene import loading

    import lora_fixtures as lf

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


def test_import_with_full_deltas_names_them_and_drops_them_on_request(tmp_path, capsys):
    from cinescene import loading

    import lora_fixtures as lf

    sd, _ = lf.published_speed_lora(loading.build_tiny_pipeline().transformer, full_deltas=0.01)
    path = lf.save(sd, tmp_path / "causvid.safetensors")
    args = ["adapters", "import", str(path), "--kind", "speed", "--base", "tiny", "--loras", str(tmp_path / "loras")]
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "blocks.0.diff_m" in err and "--drop-full-deltas" in err
    assert cli.main([*args, "--drop-full-deltas"]) == 0
    out = capsys.readouterr().out
    assert "imported causvid as a speed adapter: rank 64" in out and "left out on request" in out


@pytest.fixture(scope="module")
def cli_library(tmp_path_factory):
    from cinescene import loading

    import lora_fixtures as lf

    root = tmp_path_factory.mktemp("clilib")
    tr = loading.build_tiny_pipeline().transformer
    lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE, seed=8)), root / "look.safetensors")
    assert cli.main(["adapters", "import", str(root / "look.safetensors"), "--kind", "style", "--base", "tiny",
                     "--loras", str(root / "loras")]) == 0
    return root / "loras"


def test_compare_command(still, tmp_path, cli_library, capsys):
    out = tmp_path / "cmp"
    code = cli.main(["compare", *SMALL, "--image", str(still), "--prompt", "x", "--out", str(out), "--quiet",
                     "--style", "look", "--loras", str(cli_library)])
    assert code == 0
    captured = capsys.readouterr()
    assert "LPIPS base vs tuned" in captured.out and "UNCALIBRATED" in captured.err
    assert {p.name for p in out.iterdir()} >= {"base.mp4", "tuned.mp4", "metrics.json", "side_by_side.mp4"}


def test_metrics_command(tmp_path, capsys):
    frames = (np.random.default_rng(0).random((5, 32, 32, 3)) * 255).astype(np.uint8)
    a = media.write_video(frames, tmp_path / "a.mp4")
    b = media.write_video(frames[::-1].copy(), tmp_path / "b.mp4")
    assert cli.main(["metrics", str(a), str(b), "--prompt", "x", "--metric-weights", "random"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert set(result["videos"]) == {"a", "b"} and "lpips_pair" in result["pair"]
    assert result["uncalibrated"] and "UNCALIBRATED" in captured.err
    assert result["videos"]["a"]["camera"]["calibrated"] and "look" not in result["videos"]["a"]
    assert cli.main(["metrics", str(a), "--reference", str(b), "--metric-weights", "random"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["videos"]["a"]["look"]["distance"] < 0.01  # the same frames reversed, up to H.264 rounding
    assert len(result["videos"]["a"]["lpips_reference"]["series"]) == 5 and result["files"]["reference"] == str(b)


@pytest.mark.parametrize("case, message", [
    ("lengths", "differ: 5 frames"), ("one-frame", "at least 2"), ("unreadable", "not a readable video"),
    ("pretrained-offline", "not available here"),
])
def test_metrics_command_bad_input(tmp_path, capsys, case, message):
    frames = (np.random.default_rng(0).random((5, 32, 32, 3)) * 255).astype(np.uint8)
    a = media.write_video(frames, tmp_path / "a.mp4")
    args = ["metrics", str(a), "--metric-weights", "random"]
    if case == "lengths":
        args.insert(2, str(media.write_video(frames[:1].repeat(9, axis=0), tmp_path / "b.mp4")))
    elif case == "one-frame":
        args[1] = str(media.write_video(frames[:1], tmp_path / "one.mp4"))
    elif case == "unreadable":
        (tmp_path / "bad.mp4").write_bytes(b"\x00" * 64)
        args[1] = str(tmp_path / "bad.mp4")
    else:
        args = ["metrics", str(a)]
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_eval_command_and_missing_i3d(tmp_path, cli_library, capsys):
    for i in range(2):
        make_still(tmp_path / f"s{i}.png", seed=i)
        media.write_video((np.random.default_rng(i).random((17, 32, 48, 3)) * 255).astype(np.uint8),
                          tmp_path / f"r{i}.mp4")
    (tmp_path / "set.jsonl").write_text("\n".join(json.dumps({"image": f"s{i}.png", "prompt": "p", "reference":
                                                              f"r{i}.mp4"}) for i in range(2)))
    common = ["eval", "--model", "tiny", "--set", str(tmp_path / "set.jsonl"), "--steps", "1", "--frames", "17",
              "--height", "32", "--width", "48", "--variant", "lora=style:look:0.9", "--loras", str(cli_library)]
    assert run_cli([*common, "--out", str(tmp_path / "e1"), "--i3d", str(tmp_path / "nope.pt")]) == 2
    assert "i3d_torchscript.pt" in capsys.readouterr().err
    assert not (tmp_path / "e1").exists()
    assert run_cli([*common, "--out", str(tmp_path / "e1"), "--distances", "FVD_16,FVD_128"]) == 2
    err = capsys.readouterr().err.strip()
    assert "FVD_128 cannot be computed: the generated videos have 17 frames, 128 needed" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "e1").exists()
    assert run_cli([*common, "--out", str(tmp_path / "e2"), "--distances", "none"]) == 0
    assert "| lora |" in capsys.readouterr().out
    assert (tmp_path / "e2" / "results.csv").is_file() and (tmp_path / "e2" / "summary.md").is_file()


def test_train_command(tmp_path, capsys):
    from footage import make_dataset

    data = make_dataset(tmp_path / "data", clips=2, stills=1, frames=12)
    config = tmp_path / "train.toml"
    config.write_text('[train]\nmodel = "tiny"\nwindow = 9\narea = 3072\ngrad_accum = 1\nval_fraction = 0\n')
    args = ["train", "--config", str(config), "--data", str(data), "--stage", "style", "--name", "cli-look",
            "--steps", "2", "--runs-dir", str(tmp_path / "runs"), "--loras", str(tmp_path / "loras"), "--quiet"]
    assert cli.main(args) == 0
    assert "style: cli-look after 2 steps" in capsys.readouterr().out
    assert (tmp_path / "loras" / "style" / "cli-look.safetensors").is_file()
    assert run_cli(args) == 2  # the name is taken now
    assert "already exists" in capsys.readouterr().err
    (data / "clip0.mp4").write_bytes(b"garbage")
    assert run_cli([*args[:-1], "--name", "other"]) == 2
    err = capsys.readouterr().err.strip()
    assert "clip0.mp4" in err and len(err.splitlines()) == 1
    assert run_cli(["train", "--data", str(data), "--name", "x", "--rank", "0"]) == 2
    assert "rank" in capsys.readouterr().err


def test_every_training_setting_has_a_flag():
    import dataclasses
    import typing

    from cinescene.cli.common import given
    from cinescene.training.config import TrainConfig

    parser = cli.build_parser()
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        if field.metadata.get("cli") is False:
            continue
        flag = field.metadata.get("flag") or "--" + field.name.replace("_", "-")
        default = field.default
        if default is None:  # an optional setting: use its type's zero-ish value
            default = {int | None: 0, float | None: 0.0}.get(hints[field.name], "")
        if isinstance(default, bool):
            argv, expected = [f"--no-{flag[2:]}" if default else flag], not default
        elif isinstance(default, tuple):
            argv, expected = [flag, "0.5", "0.75"], (0.5, 0.75)
        elif isinstance(default, int | float):
            argv, expected = [flag, "3"], type(default)(3)
        elif field.metadata.get("choices"):
            choice = field.metadata["choices"][-1]
            argv, expected = [flag, choice], choice
        else:
            argv, expected = [flag, "some-value"], "some-value"
        args = parser.parse_args(["train", *argv])
        assert given(args, TrainConfig) == {field.name: expected}, field.name


def test_app_and_cli_share_the_model_flags(monkeypatch):
    import argparse

    from cinescene.cli.common import add_model_args, given, model_spec
    from cinescene.settings import ModelSpec

    cli_flags = {a.dest for a in cli.build_parser()._subparsers._group_actions[0].choices["sample"]._actions}
    app_parser = argparse.ArgumentParser()
    monkeypatch.setenv("CINESCENE_MEMORY", "model-offload")
    monkeypatch.setenv("CINESCENE_FP8", "yes")
    monkeypatch.setenv("CINESCENE_MODEL", "tiny")
    add_model_args(app_parser, env_prefix="CINESCENE_")
    app_flags = {a.dest for a in app_parser._actions} - {"help"}
    assert app_flags <= cli_flags
    # --parallel only for sample: the app would serve every request in every process.
    assert app_flags == {f.name for f in __import__("dataclasses").fields(ModelSpec)} - {"seed", "parallel"}
    assert "parallel" in cli_flags
    spec = model_spec(app_parser.parse_args([]))
    assert (spec.model, spec.memory, spec.fp8) == ("tiny", "model-offload", True)
    assert given(app_parser.parse_args(["--no-fp8"]), ModelSpec)["fp8"] is False  # a flag beats the environment


def test_a_bad_yes_no_variable_is_named(monkeypatch):
    import argparse

    from cinescene.cli.common import add_model_args
    from cinescene.errors import InputError

    monkeypatch.setenv("CINESCENE_FP8", "ture")
    with pytest.raises(InputError, match="CINESCENE_FP8='ture' is not a yes/no value"):
        add_model_args(argparse.ArgumentParser(), env_prefix="CINESCENE_")


def test_adapters_import_place_and_export_a_wan22_pair(still, tmp_path, capsys):
    from cinescene import loading

    import lora_fixtures as lf

    pipe = loading.build_tiny_pipeline(model="tiny-wan22")
    paths = lf.save_pair(lf.random_pair(pipe, lf.MOTION, seed=3), tmp_path, "Orbit", naming="kijai", alpha=4.0)
    lib = ["--loras", str(tmp_path / "loras")]
    # two files, in either order: their names say which half is which
    assert cli.main(["adapters", "import", str(paths["low_noise"]), str(paths["high_noise"]), "--kind", "motion",
                     "--base", "tiny-wan22", *lib]) == 0
    out = capsys.readouterr().out
    assert "imported Wan2.2-Orbit_I2V-A14B-lora_fp16 as a motion pair (high_noise rank 4, low_noise rank 4)" in out
    assert cli.main(["adapters", "import", "--high-noise", str(paths["high_noise"]), "--low-noise",
                     str(paths["low_noise"]), "--kind", "motion", "--name", "orbit", "--placement", "low_noise",
                     "--base", "tiny-wan22", *lib]) == 0
    capsys.readouterr()
    assert cli.main(["adapters", "list", "--json", *lib]) == 0
    listed = {a["name"]: a for a in json.loads(capsys.readouterr().out)}
    assert listed["orbit"]["placement"] == "low_noise" and set(listed["orbit"]["parts"]) == {"high_noise", "low_noise"}
    assert cli.main(["adapters", "place", "orbit", "both", *lib]) == 0
    assert "orbit now acts on both experts" in capsys.readouterr().out
    assert cli.main(["adapters", "list", *lib]) == 0
    assert "pair, both" in capsys.readouterr().out
    out = tmp_path / "shot.mp4"
    assert cli.main(["sample", "--model", "tiny-wan22", "--steps", "4", "--frames", "5", "--height", "32", "--width",
                     "48", "--image", str(still), "--prompt", "x", "--out", str(out), "--quiet", "--motion", "orbit",
                     *lib]) == 0
    entry = json.loads(out.with_suffix(".json").read_text())["adapters"][0]
    assert entry["experts"] == ["high_noise", "low_noise"] and set(entry["parts"]) == {"high_noise", "low_noise"}
    assert cli.main(["adapters", "export", "orbit", "--out", str(tmp_path / "orbit.safetensors"), *lib]) == 0
    assert (tmp_path / "orbit_high_noise.safetensors").is_file() and (tmp_path / "orbit_low_noise.safetensors").is_file()
    assert cli.main(["adapters", "remove", "orbit", *lib]) == 0


@pytest.mark.parametrize("args, message", [
    (["{high}", "--high-noise", "{high}", "--low-noise", "{low}"], "and no other file"),
    (["--high-noise", "{high}"], "needs both --high-noise FILE and --low-noise FILE"),
    (["{high}", "{high}"], "cannot tell which"),
    (["{high}", "{low}", "{low}"], "give one LoRA file, or a Wan2.2 pair"),
    (["--high-noise", "{low}", "--low-noise", "{high}"], "is named as the low-noise half"),
    (["{high}", "{low}", "--base", "tiny"], "tiny has one transformer"),
    (["{high}", "--placement", "sideways"], "invalid choice: 'sideways'"),
])
def test_bad_pair_imports_are_one_line_errors(tmp_path, capsys, args, message):
    from cinescene import loading

    import lora_fixtures as lf

    paths = lf.save_pair(lf.random_pair(loading.build_tiny_pipeline(model="tiny-wan22"), lf.MOTION), tmp_path, "o",
                         naming="ai-toolkit")
    argv = [a.format(high=paths["high_noise"], low=paths["low_noise"]) for a in args]
    base = [] if "--base" in argv else ["--base", "tiny-wan22"]
    code = run_cli(["adapters", "import", *argv, "--kind", "motion", *base, "--loras", str(tmp_path / "loras")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "loras").exists() or files_under(tmp_path / "loras") == {}


def test_importing_one_half_says_where_its_other_half_is(tmp_path, capsys):
    from cinescene import loading

    import lora_fixtures as lf

    paths = lf.save_pair(lf.random_pair(loading.build_tiny_pipeline(model="tiny-wan22"), lf.MOTION), tmp_path, "o",
                         naming="comfyui", alpha=4.0)
    assert cli.main(["adapters", "import", str(paths["high_noise"]), "--kind", "motion", "--base", "tiny-wan22",
                     "--loras", str(tmp_path / "loras")]) == 0
    captured = capsys.readouterr()
    assert paths["low_noise"].name in captured.err and "the other half of a Wan2.2 pair" in captured.err
    assert "placed on the high-noise expert" in captured.out


def test_a_pair_is_checked_against_wan22_unless_another_base_is_named(tmp_path, capsys, monkeypatch):
    from cinescene import architecture, loading
    from cinescene.adapters import AdapterLibrary

    import lora_fixtures as lf

    pipe = loading.build_tiny_pipeline(model="tiny-wan22")
    asked = []
    # The real model's skeleton takes seconds to build; which base the halves are checked against is the point.
    monkeypatch.setattr(architecture, "transformer_skeleton", lambda base: asked.append(base) or pipe.transformer)
    paths = lf.save_pair(lf.random_pair(pipe, lf.MOTION), tmp_path, "o", naming="ai-toolkit")
    assert cli.main(["adapters", "import", str(paths["high_noise"]), str(paths["low_noise"]), "--kind", "motion",
                     "--loras", str(tmp_path / "loras")]) == 0
    assert asked == ["Wan-AI/Wan2.2-I2V-A14B-Diffusers"]
    assert AdapterLibrary(tmp_path / "loras").get("o").base_model == "Wan-AI/Wan2.2-I2V-A14B-Diffusers"


def test_sample_on_wan22_takes_both_guidances_and_the_boundary(still, tmp_path):
    out = tmp_path / "a14b.mp4"
    code = cli.main(["sample", "--model", "tiny-wan22", "--steps", "4", "--frames", "5", "--height", "32",
                     "--width", "48", "--image", str(still), "--prompt", "a lighthouse", "--out", str(out),
                     "--guidance", "4", "--guidance-2", "2", "--boundary", "0.95", "--quiet"])
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert (record["settings"]["guidance"], record["settings"]["guidance_2"], record["settings"]["boundary"]) == (
        4.0, 2.0, 0.95)
    assert record["settings"]["shift"] == 5.0 and record["model"]["boundary_ratio"] == 0.95
    assert record["experts"]["high_noise"]["steps"] == 1 and record["experts"]["low_noise"]["steps"] == 3
    assert cli.main(["sample", "--model", "tiny", *SMALL[2:], "--image", str(still), "--prompt", "x",
                     "--out", str(tmp_path / "b.mp4"), "--guidance-2", "2", "--quiet"]) == 2
