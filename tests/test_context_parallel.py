"""One shot across processes with diffusers' context parallelism: two CPU processes (gloo) against one.

Ulysses runs on CPU; ring cannot (diffusers' only context-parallel backend on a CPU, native SDPA, does not
return the log-sum-exp ring attention merges by), so for ring what is tested is that it is refused, with
the reason, before any work.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cinescene import cli, context_parallel, loading, media, sampler
from cinescene.cli.common import model_spec, sample_settings
from cinescene.errors import InputError
from cinescene.settings import AdapterChoice, ModelSpec

from conftest import ROOT, TESTS, files_under, free_port, subprocess_env

# Largest difference allowed between the frames (floats in [0, 1], fp32) of the parallel and the single-process
# run. Measured on CPU: 0.0, on tiny and on toy (Ulysses computes every head over the whole sequence, exactly
# as one process does; the rest of the network works token by token).
TOLERANCE = 1e-5


def run_cli(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def run_two_processes(arrays: Path, shot: list[str], out: Path) -> subprocess.CompletedProcess:
    """The shot under torchrun on 2 gloo processes; each saves its float frames (and slots) into ``arrays``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(TESTS / "context_parallel_on_cpu.py"), str(arrays), *shot,
           "--parallel", "ulysses", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_ulysses_on_two_cpu_processes_equals_one_process(still, tmp_path):
    out, arrays = tmp_path / "out", tmp_path / "arrays"
    out.mkdir()
    arrays.mkdir()
    # --speed-slot: its LoRA wraps the output head, where diffusers gathers the sequence back (the order matters).
    shot = ["--model", "tiny", "--image", str(still), "--prompt", "a lighthouse at dusk", "--frames", "5",
            "--steps", "4", "--speed-slot", "--quiet"]
    done = run_two_processes(arrays, shot, out / "shot.mp4")

    # The same shot in this one process, on the same tiny weights: a fresh build, since the shared tiny model
    # carries whatever engine state the tests before this one left on it.
    args = cli.build_parser().parse_args(["sample", *shot, "--out", str(tmp_path / "single.mp4")])
    settings = sample_settings(args, model_spec(args))
    tiny_model = loading.load_model(model_spec(args))
    image = media.load_image(still)
    with tiny_model.lock, torch.no_grad():
        resolved = sampler.resolve_settings(settings, image.size)
        sampler.apply_shift(tiny_model.pipe, float(resolved.shift))
        single = tiny_model.pipe(**sampler.pipeline_kwargs(tiny_model, image, resolved)).frames[0]
    assert [(arrays / f"rank{rank}.slots").read_text() for rank in (0, 1)] == ["style motion speed"] * 2
    ranks = [np.load(arrays / f"rank{rank}.npy") for rank in (0, 1)]
    for frames in ranks:
        assert frames.shape == single.shape == (5, 128, 192, 3)
        assert float(np.abs(frames - single).max()) <= TOLERANCE

    # `cinescene sample` under torchrun: one video and one record, written and reported by rank 0 only.
    assert sorted(files_under(out)) == ["shot.json", "shot.mp4"]
    assert done.stdout.count("wrote ") == 1
    record = json.loads((out / "shot.json").read_text())
    assert record["model"]["parallel"] == {"mode": "ulysses", "degree": 2, "backend": "gloo"}
    reference = sampler.sample_to_file(tiny_model, image, settings, tmp_path / "single.mp4")
    assert reference.record["model"]["parallel"] is None
    video = media.read_video(out / "shot.mp4").frames.astype(int)
    # Equal floats round to equal pixels; one level allows for a float a hair either side of a rounding edge.
    assert np.abs(video - media.read_video(tmp_path / "single.mp4").frames).max() <= 1



def test_ulysses_splits_both_of_wan22s_experts_and_equals_one_process(still, tmp_path):
    arrays = tmp_path / "arrays"
    arrays.mkdir()
    shot = ["--model", "tiny-wan22", "--image", str(still), "--prompt", "a lighthouse at dusk", "--frames", "5",
            "--steps", "4", "--quiet"]
    run_two_processes(arrays, shot, tmp_path / "shot.mp4")
    # Each process split the high-noise and the low-noise expert, not only the first.
    assert [(arrays / f"rank{rank}.split").read_text() for rank in (0, 1)] == ["high_noise low_noise"] * 2
    args = cli.build_parser().parse_args(["sample", *shot, "--out", str(tmp_path / "single.mp4")])
    settings = sample_settings(args, model_spec(args))
    model, image = loading.get_model(model_spec(args)), media.load_image(still)
    with model.lock, torch.no_grad():
        resolved = sampler.resolve_settings(sampler.fit_to_model(model, settings), image.size, model.size_multiple)
        sampler.apply_shift(model.pipe, float(resolved.shift))
        single = model.pipe(**sampler.pipeline_kwargs(model, image, resolved)).frames[0]
    for rank in (0, 1):
        assert float(np.abs(np.load(arrays / f"rank{rank}.npy") - single).max()) <= TOLERANCE

SHOT = ["sample", "--model", "tiny", "--prompt", "x", "--frames", "5", "--steps", "2", "--quiet"]


@pytest.mark.parametrize("processes, extra, message", [
    (None, ["--parallel", "ulysses"], "start it with torchrun --nproc_per_node N"),
    ("1", ["--parallel", "ulysses"], "this is a single process"),
    ("2", [], "without --parallel: each would make the same shot"),
    ("2", ["--parallel", "ring"], "the native attention backend cannot give here (Native attention backend does not "
                                  "support setting `return_lse=True`.); no attention backend with context parallelism "
                                  "runs on a CPU and returns it: use --parallel ulysses"),
    ("2", ["--parallel", "ulysses", "--memory", "model-offload"], "--memory model-offload is not supported"),
    ("2", ["--parallel", "ulysses", "--compile"], "does not combine with --compile"),
    ("2", ["--parallel", "ulysses", "--device", "cuda:1"], "every process takes the GPU of its LOCAL_RANK"),
    ("3", ["--parallel", "ulysses"], "this model's 2 heads do not divide among 3 processes"),
    ("2", ["--parallel", "ulysses", "--height", "48", "--width", "48", "--frames", "1"],
     "a 1-frame shot at 48x48 makes 1 x 3 x 3 = 9 tokens: choose a size or frame count whose token count divides "
     "by 2"),
    ("2", ["--parallel", "ulysses", "--cache", "first-block"], "--cache first-block is not supported with --parallel"),
])
def test_what_cannot_run_in_parallel_is_refused_before_any_work(processes, extra, message, still, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    if processes:
        monkeypatch.setenv("WORLD_SIZE", processes)

    def no_loading(spec):  # type: ignore[no-untyped-def]
        raise AssertionError(f"the model was loaded for {spec}")

    monkeypatch.setattr(loading, "get_model", no_loading)
    code = run_cli([*SHOT, "--image", str(still), "--out", str(tmp_path / "shot.mp4"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not torch.distributed.is_initialized() and files_under(tmp_path) == {}


def test_only_the_sample_command_takes_parallel(capsys):
    for argv in (["compare", "--image", "a.png", "--prompt", "x", "--out", "d"], ["sweep", "--image", "a.png",
                                                                                  "--prompt", "x", "--out", "d"]):
        assert run_cli([*argv, "--parallel", "ulysses"]) == 2
        assert "unrecognized arguments: --parallel" in capsys.readouterr().err


def test_the_output_head_is_what_diffusers_gathers(tiny_model):
    assert context_parallel.gathered_modules(tiny_model.pipe.transformer) == ["proj_out"]


def test_a_slot_over_the_gathered_head_must_be_ready_before_parallelism(tiny_model):
    transformer = tiny_model.pipe.transformer
    context_parallel.check_slots(transformer, ("style", "motion"), [])  # attention only: any time
    context_parallel.check_slots(transformer, ("style", "motion", "speed"), ["style", "motion", "speed"])
    with pytest.raises(InputError, match=r"the speed slot must be prepared when the model loads \(--speed-slot\): "
                                         r"its LoRA wraps proj_out"):
        context_parallel.check_slots(transformer, ("style", "motion", "speed"), ["style", "motion"])


def _as_if_parallel(model: loading.LoadedModel) -> loading.LoadedModel:
    """``model`` as a process of a two-process Ulysses run sees it (no process group: the checks come first)."""
    world = context_parallel.World("ulysses", 2, "gloo", 0, torch.device("cpu"))
    return dataclasses.replace(model, parallel=world)


def test_sampling_refuses_a_shot_the_processes_cannot_share(still, small_settings):
    model = _as_if_parallel(loading.load_model(ModelSpec(model="tiny")))
    image = media.load_image(still)
    with pytest.raises(InputError, match="makes 1 x 3 x 3 = 9 tokens"):
        sampler.sample(model, image, small_settings.replace(height=48, width=48, frames=1))
    with pytest.raises(InputError, match="--cache taylorseer is not supported"):
        sampler.sample(model, image, small_settings.replace(cache="taylorseer"))


def test_sampling_refuses_a_speed_adapter_without_its_slot_prepared(tmp_path):
    from cinescene.adapters import AdapterLibrary

    model = _as_if_parallel(loading.load_model(ModelSpec(model="tiny")))
    with pytest.raises(InputError, match="--speed-slot"):
        sampler.activate_adapters(model, (AdapterChoice("speed", "lightx2v"),), AdapterLibrary(tmp_path))
    assert not model.slots.prepared


def test_sampling_refuses_a_side_adapter_over_the_gathered_head(tmp_path):
    from cinescene.adapters import AdapterLibrary

    import lora_fixtures as lf

    model = _as_if_parallel(loading.load_model(ModelSpec(model="tiny")))
    transformer = model.pipe.transformer
    pairs = lf.random_lora(transformer, lf.STYLE, seed=3)
    head = transformer.proj_out
    gen = torch.Generator().manual_seed(4)
    pairs["proj_out"] = (torch.randn(4, head.in_features, generator=gen), torch.randn(head.out_features, 4,
                                                                                      generator=gen))
    library = AdapterLibrary(tmp_path / "loras")
    info = library.import_file(lf.save(lf.diffusers_layout(pairs), tmp_path / "graded.safetensors"), "style",
                               base_model="tiny", transformer=transformer)
    assert not info.hotswap
    with pytest.raises(InputError, match="would load beside it, wrapping proj_out"):
        sampler.activate_adapters(model, (AdapterChoice("style", info.name),), library)
