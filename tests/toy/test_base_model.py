"""The toy model: the script's recipe runs and is deterministic; the shipped folder is what it recorded and loads."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cinescene import architecture
from cinescene.toy import base_model, footage, recipe

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = architecture.TOY_FOLDER


def run_quick(*outs: Path, extra: tuple[str, ...] = ()) -> list[dict]:
    # Subprocesses: the recipe sets process-wide torch state (threads, deterministic algorithms, denormals).
    # One thread each, side by side: the two cores run both at once.
    command = [sys.executable, str(ROOT / "scripts" / "train_toy_model.py"), "--quick", "--no-adapters",
               "--no-move-check", "--threads", "1", *extra, "--out"]
    runs = [subprocess.Popen([*command, str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for out in outs]
    for run in runs:
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, output.decode()[-2000:]
    return [json.loads((out / "toy_model.json").read_text()) for out in outs]


def test_quick_recipe_is_deterministic_and_loads_in_diffusers(tmp_path):
    from diffusers import WanImageToVideoPipeline

    first, second = run_quick(tmp_path / "a", tmp_path / "b")
    assert first["weights"] == second["weights"]  # sha256 of every safetensors file
    assert set(first["weights"]) == {f"{part}/diffusion_pytorch_model.safetensors" for part in ("transformer", "vae")} | {
        "text_encoder/model.safetensors", "image_encoder/model.safetensors"}
    assert first["loads"] == {"diffusers_from_pretrained_equal": True, "cinescene_source": "local"}
    assert first["text_path_max_difference"] < 1e-5  # the training text path is the pipeline's own
    pipe = WanImageToVideoPipeline.from_pretrained(str(tmp_path / "a"))
    assert type(pipe.transformer).__name__ == "WanTransformer3DModel" and pipe.transformer.config.image_dim == 64


def test_shipped_weights_are_the_recorded_ones():
    log = json.loads((SHIPPED / "toy_model.json").read_text())
    assert log["weights"] == base_model.weight_hashes(SHIPPED)
    assert log["schedule"] == dataclasses.asdict(recipe.Schedule())  # the full recipe made them


def test_a_run_says_which_files_it_wrote_as_the_shipped_ones():
    shipped = json.loads((SHIPPED / "toy_model.json").read_text())
    ours = {**shipped, "machine": recipe.machine(),
            "weights": {**shipped["weights"], "vae/diffusion_pytorch_model.safetensors": {"sha256": "0" * 64}}}
    lines = base_model.reproduction(ours, shipped)
    assert "vae/diffusion_pytorch_model.safetensors: differs from the shipped file" in lines
    assert "transformer/diffusion_pytorch_model.safetensors: the same sha256 as the shipped file" in lines
    assert ours["machine"]["instruction_set"] in lines[-1] and lines[-1].count("2 threads") == 2


def test_a_differing_file_says_how_far_it_is_from_the_shipped_one(tmp_path):
    from safetensors.torch import save_file

    name = "transformer/diffusion_pytorch_model.safetensors"
    for folder, scale in (("ours", 1.001), ("shipped", 1.0)):
        (tmp_path / folder / "transformer").mkdir(parents=True)
        save_file({"w": torch.full((4, 4), 3.0 * scale), "b": torch.full((4,), 4.0 * scale)}, tmp_path / folder / name)
    record = {"torch_threads": 2, "machine": recipe.machine()}
    ours = {**record, "weights": {name: {"sha256": "1" * 64}}}
    shipped = {**record, "weights": {name: {"sha256": "2" * 64}}}
    line = base_model.reproduction(ours, shipped, tmp_path / "ours", tmp_path / "shipped")[0]
    assert line == f"{name}: differs from the shipped file (relative difference 1.0e-03)"
    assert base_model.relative_difference(tmp_path / "shipped" / name, tmp_path / "shipped" / name) == 0.0


def test_the_transformer_stage_trains_on_a_given_vae(tmp_path):
    """``--vae FOLDER``: the shipped VAE, byte for byte, and the record says where it came from."""
    (run,) = run_quick(tmp_path / "on-shipped-vae", extra=("--vae", str(SHIPPED)))
    shipped = json.loads((SHIPPED / "toy_model.json").read_text())
    vae_file = "vae/diffusion_pytorch_model.safetensors"
    assert run["weights"][vae_file] == shipped["weights"][vae_file]
    assert run["vae"]["from"] == str(SHIPPED.resolve()) and run["vae"]["sha256"] == shipped["weights"][vae_file]["sha256"]
    assert run["vae"]["made_by"]["psnr_db"] == shipped["vae"]["psnr_db"]
    assert "vae" not in run["timings"] and run["timings"]["transformer"]["wall"] > 0
    assert run["weights"]["transformer/diffusion_pytorch_model.safetensors"] != shipped["weights"][
        "transformer/diffusion_pytorch_model.safetensors"]  # a few steps of it, not the shipped transformer


def test_a_vae_passed_on_through_another_vae_run_keeps_the_record_of_the_run_that_trained_it(tmp_path):
    import shutil

    middle = tmp_path / "made-with-vae"
    shutil.copytree(SHIPPED / "vae", middle / "vae")
    trained = json.loads((SHIPPED / "toy_model.json").read_text())["vae"]
    (middle / "toy_model.json").write_text(json.dumps({"vae": {"from": str(SHIPPED), "made_by": trained}}))
    _, record = base_model.load_vae(middle)
    assert record["from"] == str(middle) and record["made_by"] == trained
    assert base_model.load_vae(SHIPPED)[1]["made_by"] == trained


def test_a_folder_without_a_vae_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_toy_model.py"), "--quick", "--no-adapters",
                          "--out", str(out), "--vae", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith(f"--vae {tmp_path}: no trained VAE there (no vae/config.json)")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_vocabulary_covers_every_caption_and_matches_the_text_encoder():
    import re

    import numpy as np

    words = set(base_model.vocabulary())
    for i in range(50):
        scene = footage.random_scene(np.random.default_rng([5, i]))
        for move in footage.MOVES:
            assert set(re.findall(r"[\w-]+|[,.]", footage.caption(scene, move))) <= words
    assert architecture.TOY_TEXT_ENCODER["vocab_size"] == len(words)
    tokenizer = base_model.word_tokenizer()
    ids = tokenizer("a red circle on blue stripes, the camera pans left").input_ids
    assert tokenizer.unk_token_id not in ids and ids[-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("model", ["toy", str(SHIPPED)])
def test_toy_loads_through_the_local_folder_path(model):
    from cinescene.loading import load_model
    from cinescene.settings import ModelSpec

    loaded = load_model(ModelSpec(model=model, device="cpu"))
    assert loaded.source == ("toy" if model == "toy" else "local")
    assert loaded.pipe.transformer.dtype == torch.float32
    assert loaded.preset.name == "toy"


def test_moves_followed_counts_the_samples_measured_as_the_prompted_move():
    check = {"content-only": [{"label": "pan-left", "along": 0.0}],
             "pan-left": [{"label": "pan-left", "along": 1.5}, {"label": "static", "along": 0.1},
                          {"label": "pan-left", "along": 1.4}],
             "tilt-up": [{"label": "tilt-down", "along": -1.0}, {"label": "tilt-up", "along": 2.0}]}
    moves = base_model.moves_followed(check)
    assert moves == {"followed": 3, "of": 5, "by_move": {"pan-left": {"followed": 2, "of": 3, "along": 1.0},
                                                         "tilt-up": {"followed": 1, "of": 2, "along": 0.5}}}


def test_the_move_check_reruns_on_a_made_model_without_touching_its_weights(tmp_path):
    (before,) = run_quick(tmp_path / "m")
    code = ("import sys; from pathlib import Path; from cinescene.toy import base_model, recipe; "
            "base_model.recheck_moves(Path(sys.argv[1]), recipe.QUICK, threads=1, report=lambda line: None)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], check=True, timeout=600, cwd=ROOT)
    after = json.loads((tmp_path / "m" / "toy_model.json").read_text())
    assert after["weights"] == before["weights"] == base_model.weight_hashes(tmp_path / "m")
    assert set(after["move_check"]) == {"content-only", *footage.MOVES}
    assert all(len(rows) == recipe.QUICK.eval_scenes for rows in after["move_check"].values())
    assert after["moves_followed"]["of"] == len(footage.MOVES) * recipe.QUICK.eval_scenes
    assert after["move_check_rechecked"]["stills_before"] == recipe.QUICK.eval_scenes
    assert after["timings"] == before["timings"] and "move_check" not in after["timings"]  # the run's own, as it was


def test_the_move_check_is_refused_on_a_folder_the_script_did_not_make(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_toy_model.py"), "--move-check-only",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith(f"{tmp_path}: no toy_model.json there (not a folder "
                                                        "train_toy_model.py wrote)")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
