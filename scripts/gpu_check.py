"""GPU acceptance check: Wan2.1-I2V-14B at 480x832x81 with random weights, measured through cinescene's own code.

Run it the moment a CUDA machine is at hand; it downloads nothing. It builds the real pipeline from the
shipped configs (cinescene/shipped_configs/: the 14B transformer, UMT5-XXL, CLIP ViT-H, the Wan VAE) with
random weights (bf16 transformer and text encoder, fp32 VAE and image encoder, as cinescene loads them) and
measures:

* seconds per denoising step with classifier-free guidance, for every attention backend that is installed,
  with and without regional compile, with fp8 storage, and with the first-block cache
  (placement, speed and sampler, as ``loading.load_model`` applies them);
* the peak GPU memory of each memory mode (and fp8 row) beside ``python -m cinescene plan``'s estimate (budget);
* one LoRA training step on a 33-frame window: time and peak memory (the trainer's ``prepare_trainable`` and
  the flow-matching objective), beside the plan's training estimate;
* the time to swap a rank-32 style adapter into the style slot at full size (sampler.activate_adapters, slots).

It writes ``gpu_check.json`` and ``gpu_check.md`` (a table) into ``--out``. ``--scale 0.05`` shrinks the
transformer, the size and the frames (and uses the tiny encoders) so the suite runs it on a CPU in seconds;
on a CPU the report says which numbers mean nothing there.

    python scripts/gpu_check.py [--out gpu_check] [--steps 4] [--scale 1] [--sections steps,memory,train,swap]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cinescene import architecture, budget, loading, placement, sampler, slots, speed  # noqa: E402
from cinescene.adapters import AdapterLibrary  # noqa: E402
from cinescene.errors import CinesceneError  # noqa: E402
from cinescene.record import library_versions  # noqa: E402
from cinescene.settings import HUB_480P, AdapterChoice, ModelSpec, SampleSettings  # noqa: E402

SECTIONS = ("steps", "memory", "train", "swap")
GB = 1e9


# -- the model under test ------------------------------------------------------------------------------------

def scaled_configs(scale: float) -> dict[str, dict[str, Any]]:
    """The shipped 14B configs; below scale 1 a transformer with fewer, narrower blocks and the tiny encoders."""
    configs = architecture.configs(HUB_480P)
    if scale >= 1:
        return configs
    tiny = {part: dict(config) for part, config in architecture.TINY_CONFIGS.items()}
    t = dict(configs["transformer"])
    heads = max(2, round(t["num_attention_heads"] * scale))
    head_dim = 12 * max(1, round(t["attention_head_dim"] * scale / 12))  # RoPE splits a head in 3 even parts
    t.update(num_attention_heads=heads, attention_head_dim=head_dim, added_kv_proj_dim=heads * head_dim,
             num_layers=max(2, round(t["num_layers"] * scale)), ffn_dim=max(32, round(t["ffn_dim"] * scale / 8) * 8),
             text_dim=tiny["text_encoder"]["d_model"], image_dim=tiny["image_encoder"]["hidden_size"])
    return {**tiny, "transformer": t}


def write_config_folder(configs: dict[str, dict[str, Any]], folder: Path) -> str:
    """Configs only, in diffusers layout, so budget and architecture read the model under test like any folder."""
    folder.mkdir(parents=True, exist_ok=True)
    # The parts a folder has are read from its model_index.json, as diffusers writes it: [library, class].
    classes = {"transformer": ["diffusers", "WanTransformer3DModel"],
               "transformer_2": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"],
               "text_encoder": ["transformers", "UMT5EncoderModel"],
               "image_encoder": ["transformers", "CLIPVisionModel"]}
    index = {"_class_name": "WanImageToVideoPipeline", **{part: classes[part] for part in configs}}
    (folder / "model_index.json").write_text(json.dumps(index))
    for part, config in configs.items():
        (folder / part).mkdir(exist_ok=True)
        (folder / part / "config.json").write_text(json.dumps(config))
    return str(folder)


@contextlib.contextmanager
def building(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Create modules straight on ``device`` in ``dtype``: a 14B model never exists in fp32 or twice."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def build_transformer(configs: dict[str, dict[str, Any]], device: torch.device) -> Any:
    from diffusers import WanTransformer3DModel

    with torch.random.fork_rng(devices=[]), building(device, placement.compute_dtype(device)):
        torch.manual_seed(0)
        return WanTransformer3DModel.from_config(configs["transformer"]).eval()


def build_pipeline(configs: dict[str, dict[str, Any]], device: torch.device) -> Any:
    """WanImageToVideoPipeline with random weights, in the dtypes cinescene loads the real one in."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline
    from transformers import (
        ByT5Tokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
    )

    compute = placement.compute_dtype(device)
    transformer = build_transformer(configs, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        with building(device, compute):
            text_encoder = UMT5EncoderModel(UMT5Config(**configs["text_encoder"])).eval()
        with building(device, torch.float32):  # fp32, as loading keeps the VAE and the image encoder
            vae = AutoencoderKLWan.from_config(configs["vae"]).eval()
            image_encoder = CLIPVisionModel(CLIPVisionConfig(**configs["image_encoder"])).eval()
    side = configs["image_encoder"]["image_size"]
    return WanImageToVideoPipeline(
        tokenizer=ByT5Tokenizer(),  # needs no vocabulary files; its ids fit any vocabulary
        text_encoder=text_encoder, vae=vae, transformer=transformer, image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size={"height": side, "width": side}, size={"shortest_edge": side}),
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                          num_train_timesteps=1000))


def engine(configs: dict[str, dict[str, Any]], spec: ModelSpec, device: torch.device) -> loading.LoadedModel:
    """A random-weight pipeline given what ``loading.load_model`` gives a loaded one: fp8, placement, engine."""
    # Offloading modes start from weights in CPU memory, as from_pretrained leaves them.
    pipe = build_pipeline(configs, device if spec.memory == "none" else torch.device("cpu"))
    pipe.set_progress_bar_config(disable=True)
    if spec.fp8:
        placement.enable_fp8_storage(pipe.transformer, device)
    placement.place(pipe, spec, device)
    model = loading.LoadedModel(pipe=pipe, spec=spec, source="local", model_id=spec.model, device=device,
                                dtype=pipe.transformer.dtype, defaults=architecture.defaults_for(spec.model))
    speed.prepare_engine(model.pipe, model.slots, spec)
    return model


def release(*objects: Any) -> None:
    del objects
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return round(torch.cuda.max_memory_allocated(device) / GB, 2)


# -- the measurements ----------------------------------------------------------------------------------------

def shot(size: dict[str, int], steps: int, **changes: Any) -> SampleSettings:
    return SampleSettings(prompt="a slow dolly-in on a lighthouse at dusk", steps=steps, frames=size["frames"],
                          height=size["height"], width=size["width"], guidance=5.0, seed=0, **changes)


def seconds_per_step(model: loading.LoadedModel, image: Any, settings: SampleSettings) -> dict[str, Any]:
    """Per denoising step (CFG: two transformer forwards), from the sampler's own progress events.

    The first step is left out: it pays for compilation and kernel selection, once per engine.
    """
    elapsed: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "progress" and event.get("task") == "denoising":
            elapsed.append(event["elapsed"])

    result = sampler.sample(model, image, settings, on_event=on_event)
    steps = [b - a for a, b in zip(elapsed, elapsed[1:])]
    return {"seconds_per_step": round(statistics.median(steps), 4) if steps else None,
            "first_step_seconds": round(elapsed[0], 3) if elapsed else None, "cache": result.speed.get("cache")}


def installed_backends(model: loading.LoadedModel) -> list[str]:
    """Attention backends whose packages are here: diffusers' dispatcher refuses the others by name."""
    found = []
    for backend in speed.attention_backends():
        try:
            speed.set_attention(model.pipe, backend)
        except CinesceneError:
            continue
        found.append(backend)
    speed.set_attention(model.pipe, "native")
    return found


def measure_steps(configs: dict, ref: str, device: torch.device, image: Any, size: dict[str, int], steps: int,
                  compile_backend: str, only: list[str] | None) -> list[dict[str, Any]]:
    rows = []
    base = ModelSpec(model=ref, device=str(device))

    def run(label: str, model: loading.LoadedModel, backend: str, **changes: Any) -> None:
        try:
            speed.set_attention(model.pipe, backend)
            row = seconds_per_step(model, image, shot(size, steps, **changes))
        except (CinesceneError, RuntimeError) as err:  # a backend that refuses this shape, an out-of-memory
            row = {"seconds_per_step": None, "error": str(err).splitlines()[0][:200]}
        rows.append({"variant": label, "attention": backend, **row})
        print(f"  {label:<28} {backend:<18} {row.get('seconds_per_step')}", file=sys.stderr)

    model = engine(configs, base, device)
    backends = [b for b in installed_backends(model) if only is None or b in only]
    for backend in backends:
        run("plain", model, backend)
    run("first-block cache 0.05", model, "native", cache="first-block", cache_threshold=0.05)
    release(model)
    model = engine(configs, ModelSpec(model=ref, device=str(device), compile=True, compile_backend=compile_backend),
                   device)
    for backend in backends:
        run(f"regional compile ({compile_backend})", model, backend)
    release(model)
    model = engine(configs, ModelSpec(model=ref, device=str(device), fp8=True), device)
    run("fp8 storage", model, "native")
    release(model)
    return rows


def measure_memory(configs: dict, ref: str, device: torch.device, image: Any, size: dict[str, int]) -> list[dict]:
    plan = budget.make_plan(ref, size["height"], size["width"], size["frames"], steps=2)
    rows = []
    for label, row in budget.MEMORY_ROWS.items():
        reset_peak(device)
        measured, error = None, None
        try:
            model = engine(configs, ModelSpec(model=ref, device=str(device), memory=row.mode, fp8=row.fp8), device)
            sampler.sample(model, image, shot(size, 2))
            measured = peak_gb(device)
            release(model)
        except (CinesceneError, RuntimeError) as err:
            error = str(err).splitlines()[0][:200]
            release()
        estimate = round(sum(plan.memory[label].values()) / GB, 4)
        rows.append({"mode": label, "measured_peak_gb": measured, "plan_estimate_gb": estimate,
                     **({"error": error} if error else {})})
        print(f"  {label:<20} measured {measured} GB, plan {estimate} GB", file=sys.stderr)
    return rows


def measure_training(configs: dict, ref: str, device: torch.device, size: dict[str, int], rank: int,
                     work: Path) -> dict[str, Any]:
    from cinescene.training import config as train_config
    from cinescene.training.objective import TimestepSampler, flow_matching_loss
    from cinescene.training.trainer import Trainer

    frames = size["train_frames"]
    transformer = build_transformer(configs, device)
    # The trainer keeps only the transformer on the GPU (latents and embeddings come from its cache), so that is
    # all this step holds; prepare_trainable freezes whatever encoders it is given.
    pipe = types.SimpleNamespace(transformer=transformer, vae=torch.nn.Identity(), text_encoder=torch.nn.Identity(),
                                 image_encoder=torch.nn.Identity())
    model = loading.LoadedModel(pipe=pipe, spec=ModelSpec(model=ref), source="local", model_id=ref, device=device,
                                dtype=transformer.dtype, defaults=architecture.defaults_for(ref))
    config = train_config.build(model=ref, data=str(work / "no-data"), stage="motion", name="gpu-check", rank=rank,
                                runs_dir=str(work / "runs"), loras_dir=str(work / "loras"))
    params = Trainer(config).prepare_trainable(model, "motion", None)
    transformer.enable_gradient_checkpointing()
    transformer.train()
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
    t = configs["transformer"]
    latent = ((frames - 1) // 4 + 1, size["height"] // 8, size["width"] // 8)
    image_cfg = configs["image_encoder"]
    gen = torch.Generator().manual_seed(0)
    batch = {"latents": torch.randn(1, t["out_channels"], *latent, generator=gen),
             "condition": torch.randn(1, t["in_channels"] - t["out_channels"], *latent, generator=gen),
             "prompt_embeds": torch.randn(1, 512, t["text_dim"], generator=gen),
             "image_embeds": torch.randn(1, (image_cfg["image_size"] // image_cfg["patch_size"]) ** 2 + 1,
                                         t["image_dim"], generator=gen)}
    batch = {k: v.to(device, placement.compute_dtype(device)) for k, v in batch.items()}
    objective = TimestepSampler(3.0)
    times = []
    reset_peak(device)
    for step in range(2):  # the first step allocates optimizer state and warms kernels up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = flow_matching_loss(transformer, batch, objective, torch.Generator().manual_seed(step))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    plan = budget.make_plan(ref, size["height"], size["width"], size["frames"], train_frames=frames, rank=rank)
    result = {"frames": frames, "rank": rank, "seconds_per_step": round(times[-1], 3),
              "first_step_seconds": round(times[0], 3), "measured_peak_gb": peak_gb(device),
              "plan_estimate_gb": round(sum(plan.training["none"].values()) / GB, 4),
              "loss_is_finite": bool(torch.isfinite(loss).item())}
    release(transformer, model, optimizer)
    print(f"  training step {result['seconds_per_step']} s, peak {result['measured_peak_gb']} GB", file=sys.stderr)
    return result


def random_style_adapter(transformer: Any, rank: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, linear in slots.slot_modules(transformer, slots.SLOTS["style"]).items():
        state[f"transformer.{name}.lora_A.weight"] = (torch.randn(rank, linear.in_features, generator=gen) * 0.01)
        state[f"transformer.{name}.lora_B.weight"] = (torch.randn(linear.out_features, rank, generator=gen) * 0.01)
    return state


def measure_swap(configs: dict, ref: str, device: torch.device, work: Path, swaps: int) -> dict[str, Any]:
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline

    transformer = build_transformer(configs, device)
    library = AdapterLibrary(work / "loras")
    for name, seed in (("look-a", 1), ("look-b", 2)):
        library.add(random_style_adapter(transformer, slots.SLOTS["style"].max_rank, seed), "style", name=name,
                    base_model=ref, transformer=transformer)
    pipe = WanImageToVideoPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=transformer,
                                   scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction",
                                                                     use_flow_sigmas=True))
    model = loading.LoadedModel(pipe=pipe, spec=ModelSpec(model=ref), source="local", model_id=ref, device=device,
                                dtype=transformer.dtype, defaults=architecture.defaults_for(ref))
    sampler.activate_adapters(model, (AdapterChoice("style", "look-b"),), library)  # prepares the slots once
    times = []
    for i in range(swaps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        sampler.activate_adapters(model, (AdapterChoice("style", ("look-a", "look-b")[i % 2]),), library)
        slots.set_strengths(pipe, {"style": 1.0, "motion": 0.0}, model.slots)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    release(transformer, model, pipe)
    result = {"rank": slots.SLOTS["style"].max_rank, "swaps": swaps,
              "median_ms": round(statistics.median(times) * 1e3, 1), "max_ms": round(max(times) * 1e3, 1)}
    print(f"  adapter swap median {result['median_ms']} ms", file=sys.stderr)
    return result


# -- the report ----------------------------------------------------------------------------------------------

def cpu_caveats(scale: float) -> list[str]:
    return [
        "no CUDA device: these are CPU numbers, meaningless for GPU speed or memory",
        f"scale {scale}: a smaller transformer, size and frame count, and the tiny encoders",
        "peak GPU memory: not measured (no CUDA memory counters); the plan column is the estimate for the scaled model",
        "attention backends: a CPU runs the dispatcher's CPU paths (the GPU-only kernels refuse); only GPU timings "
        "compare backends",
        "fp8 storage on a CPU computes in fp32 and only shows the code path works",
        "regional compile on a CPU exercises the compile path, not GPU kernels",
    ]


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# GPU check: {report['model']} at {report['size']['width']}x{report['size']['height']}, "
             f"{report['size']['frames']} frames", "", f"device: {report['device']}; scale {report['scale']}; "
             f"torch {report['versions'].get('torch', '?')}, diffusers {report['versions'].get('diffusers', '?')}", ""]
    if report["caveats"]:
        lines += ["**Not meaningful here:**", *[f"- {c}" for c in report["caveats"]], ""]
    if "steps" in report:
        lines += ["## Seconds per denoising step (CFG)", "",
                  "| variant | attention | s/step | s to the first step | note |", "| --- | --- | --- | --- | --- |"]
        for r in report["steps"]:
            note = r.get("error") or (f"cache {r['cache']['kind']}" if r.get("cache", {}).get("kind") != "none" else "")
            lines.append(f"| {r['variant']} | {r['attention']} | {r.get('seconds_per_step')} | "
                         f"{r.get('first_step_seconds')} | {note} |")
        lines.append("")
    if "memory" in report:
        lines += ["## Peak memory per memory mode (sampling)", "", "| mode | measured GB | plan GB | note |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {r['mode']} | {r['measured_peak_gb']} | {r['plan_estimate_gb']} | {r.get('error', '')} |"
                  for r in report["memory"]]
        lines.append("")
    if "train" in report:
        t = report["train"]
        lines += ["## LoRA training step", "", "| frames | rank | s/step | first step s | peak GB | plan GB |",
                  "| --- | --- | --- | --- | --- | --- |",
                  f"| {t['frames']} | {t['rank']} | {t['seconds_per_step']} | {t['first_step_seconds']} | "
                  f"{t['measured_peak_gb']} | {t['plan_estimate_gb']} |", ""]
    if "swap" in report:
        s = report["swap"]
        lines += ["## Adapter swap (style slot, full size)", "", "| rank | swaps | median ms | max ms |",
                  "| --- | --- | --- | --- |", f"| {s['rank']} | {s['swaps']} | {s['median_ms']} | {s['max_ms']} |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="gpu_check", help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per timing run (the first is left out)")
    parser.add_argument("--scale", type=float, default=1.0, help="below 1: a smaller model and video (for CPU tests)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"any of {', '.join(SECTIONS)}")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend for the compile rows")
    parser.add_argument("--rank", type=int, default=32, help="LoRA rank of the training step")
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backends", default=None, help="comma-separated attention backends (default: every one "
                                                        "installed)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if not set(sections) <= set(SECTIONS) or args.steps < 2 or not 0 < args.scale <= 1:
        parser.error(f"--sections takes {', '.join(SECTIONS)}; --steps at least 2; --scale in (0, 1]")

    device = placement.resolve_device(args.device)
    configs = scaled_configs(args.scale)
    work = Path(tempfile.mkdtemp(prefix="cinescene-gpu-check-"))
    ref = HUB_480P if args.scale >= 1 else write_config_folder(configs, work / "model")
    s = args.scale
    size = {"height": max(16, round(480 * s / 16) * 16), "width": max(16, round(832 * s / 16) * 16),
            "frames": 4 * max(1, round(20 * s)) + 1, "train_frames": 4 * max(1, round(8 * s)) + 1}
    from PIL import Image

    image = Image.new("RGB", (size["width"], size["height"]), (90, 120, 160))
    report: dict[str, Any] = {"model": HUB_480P if s >= 1 else f"{HUB_480P} scaled by {s}", "scale": s,
                              "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
                              "size": size, "versions": {**library_versions(), "python": platform.python_version()},
                              "caveats": [] if device.type == "cuda" else cpu_caveats(s), "notes": []}
    report["notes"].append("random weights: the first-block cache's skip decisions follow them, so its row shows the "
                           "cost of the cache's checks and of what it skipped on these weights, not a real speed-up")
    started = time.perf_counter()
    if "steps" in sections:
        print("seconds per step:", file=sys.stderr)
        only = [b.strip() for b in args.backends.split(",")] if args.backends else None
        report["steps"] = measure_steps(configs, ref, device, image, size, args.steps, args.compile_backend, only)
    if "memory" in sections:
        print("memory modes:", file=sys.stderr)
        report["memory"] = measure_memory(configs, ref, device, image, size)
    if "train" in sections:
        print("training step:", file=sys.stderr)
        report["train"] = measure_training(configs, ref, device, size, args.rank, work)
    if "swap" in sections:
        print("adapter swap:", file=sys.stderr)
        report["swap"] = measure_swap(configs, ref, device, work, args.swaps)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    (out / "gpu_check.md").write_text(markdown(report))
    print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'} in {report['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
