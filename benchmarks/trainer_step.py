"""Training-step cost: cinescene's step on cached latents against a bare step, and against encoding every step.

On the tiny model (real classes, small sizes) with a dataset written here:

* ``cached``: what the trainer does per optimizer step: load the cached sample
  (safetensors), accelerate's accumulate/backward/clip/step, the flow-matching
  loss with the I2V conditioning;
* ``bare``: forward + backward + AdamW step of the same transformer with the
  same LoRA, on tensors already in memory;
* ``encode``: the same step, but encoding the window with the VAE, the caption
  with T5 and the first frame with CLIP every time (what training without a cache costs).

Goals: cached / bare <= 1.15, encode / cached >= 3.

    python benchmarks/trainer_step.py [--runs 20] [--window 33] [--area 28672]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from _common import interleaved, median, paired_ratio, report
from cinescene.training import config as train_config
from cinescene.training import dataset, latent_cache
from cinescene.training.latent_cache import CachedSamples, LatentCache, component_id
from cinescene.training.objective import TimestepSampler, flow_matching_loss
from cinescene.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--window", type=int, default=33)
    parser.add_argument("--area", type=int, default=128 * 224)
    args = parser.parse_args()

    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from footage import make_dataset

    work = Path(tempfile.mkdtemp(prefix="cinescene-step-"))
    root = make_dataset(work / "data", clips=2, stills=0, frames=args.window + 3)
    config = train_config.build(model="tiny", data=str(root), stage="motion", name="bench", window=args.window,
                                area=args.area, grad_accum=1, runs_dir=str(work / "runs"),
                                loras_dir=str(work / "loras"))
    trainer = Trainer(config)
    from accelerate import Accelerator

    from cinescene.loading import load_model
    from cinescene.settings import ModelSpec

    trainer.accelerator = accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model = load_model(ModelSpec(model="tiny", device=str(accelerator.device)))
    ds = dataset.scan(root, stage="motion", window=args.window, val_fraction=0)
    samples = latent_cache.samples_for(ds.train, "motion", window=args.window, fps=16, style_frames_per_clip=1,
                                       area=args.area)
    cache = LatentCache(work / "cache", component_id(model.pipe, "tiny"), 16)
    cache.build(model.pipe, samples)
    params = trainer.prepare_trainable(model, "motion", None)
    transformer = model.pipe.transformer
    transformer.enable_gradient_checkpointing()
    transformer.train()
    optimizer = torch.optim.AdamW(params, lr=3e-5, betas=(0.9, 0.999), weight_decay=0.01)
    prepared, optimizer = accelerator.prepare(transformer, optimizer)
    sampler_t = TimestepSampler(3.0)
    cached_samples = CachedSamples(cache, samples)
    in_memory = [{k: v[None] for k, v in cached_samples[i].items()} for i in range(len(cached_samples))]
    counter = {"i": 0}

    def step(batch: dict[str, torch.Tensor], model_: torch.nn.Module, use_accelerate: bool) -> None:
        generator = torch.Generator().manual_seed(counter["i"])
        counter["i"] += 1
        if use_accelerate:
            with accelerator.accumulate(model_), accelerator.autocast():
                loss = flow_matching_loss(model_, batch, sampler_t, generator)
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        else:
            loss = flow_matching_loss(model_, batch, sampler_t, generator)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    def cached() -> None:
        index = counter["i"] % len(cached_samples)
        step({k: v[None] for k, v in cached_samples[index].items()}, prepared, True)

    def bare() -> None:
        step(in_memory[counter["i"] % len(in_memory)], transformer, False)

    def encode() -> None:
        sample = samples[counter["i"] % len(samples)]
        with torch.no_grad():
            frames = latent_cache.decode_fitted(sample.item, 16, sample.height, sample.width, stop=sample.frames)
            entry = {}
            from PIL import Image

            pil = [Image.fromarray(f) for f in frames[:sample.frames]]
            video = model.pipe.video_processor.preprocess_video(pil, height=sample.height, width=sample.width)
            entry["latents"] = latent_cache.normalize(model.pipe, model.pipe.vae.encode(video).latent_dist.mode())
            entry["condition"] = latent_cache.i2v_condition(model.pipe, pil[0], sample.frames, sample.height,
                                                            sample.width)
            entry["image_embeds"] = model.pipe.encode_image(pil[0], accelerator.device)
            entry["prompt_embeds"] = model.pipe.encode_prompt(sample.item.caption, do_classifier_free_guidance=False,
                                                              max_sequence_length=512, device=accelerator.device)[0]
        step(entry, prepared, True)

    times = interleaved({"cached": cached, "bare": bare, "encode": encode}, runs=args.runs, warmup=2)
    overhead = paired_ratio(times, "cached", "bare")
    report("trainer_step_overhead", overhead, "<= 1.15", overhead <= 1.15,
           f"cached step {median(times['cached']) * 1e3:.1f} ms, bare {median(times['bare']) * 1e3:.1f} ms "
           f"({args.window} frames, {samples[0].height}x{samples[0].width}, tiny model, {args.runs} paired runs)")
    speedup = paired_ratio(times, "encode", "cached")
    report("trainer_cache_speedup", speedup, ">= 3", speedup >= 3,
           f"encoding every step {median(times['encode']) * 1e3:.1f} ms against cached "
           f"{median(times['cached']) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
