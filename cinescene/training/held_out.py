"""A training run's held-out validation: short samples from held-out clips' first frames, scored against them.

Each validation samples several held-out items with several seeds, so a
decision rests on more than one clip and one noise draw. The mean LPIPS against
the clips drives early stopping (lower is closer to the crew's own footage), or,
with ``val_score = "look"``, the mean look distance to them (their colour grade,
measured without network weights). CLIP-SIM to each caption, the look distance
and each sample's camera motion are reported beside it, the means with their spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import media, metrics, sampler
from ..architecture import defaults_for
from ..loading import LoadedModel
from ..settings import DEFAULT_NEGATIVE_PROMPT, PRESETS
from .config import TrainConfig
from .latent_cache import STYLE_VALIDATION_FRAMES, LatentCache, Sample


def validate(model: LoadedModel, cache: LatentCache, samples: list[Sample], config: TrainConfig, accelerator: Any,
             video_path: Path) -> tuple[dict[str, Any], Path]:
    """Score ``samples`` under ``config.val_seeds`` seeds each: means, spreads and each score.

    The first item's first seed is written to ``video_path`` (one video per validation is what a person
    watches; the rest are only scored).
    """
    if not samples:
        raise ValueError("validation needs at least one held-out sample")
    scores, video = [], video_path
    for sample in samples:
        for seed in range(config.seed, config.seed + config.val_seeds):
            one, path = sample_and_score(model, cache, sample, config, accelerator,
                                         video_path if not scores else None, seed)
            video = path or video
            scores.append({"item": sample.label, "seed": seed, "lpips": one["lpips"], "clip_text": one["clip_text"],
                           "look": one["look"], "camera": one["camera"]})
    spread = {"ddof": 1} if len(scores) > 1 else {}
    summary: dict[str, Any] = {}
    for name in ("lpips", "clip_text", "look"):
        values = np.array([s[name] for s in scores])
        summary.update({name: float(values.mean()), f"{name}_std": float(values.std(**spread))})
    for key in ("dx", "dy", "zoom"):
        summary[f"camera_{key}"] = float(np.mean([s["camera"][key] for s in scores]))
    summary.update({"val_score": config.val_score, "items": len(samples), "seeds": config.val_seeds,
                    "scores": scores, "calibrated": one["calibrated"]})
    return summary, video


def sample_and_score(model: LoadedModel, cache: LatentCache, sample: Sample, config: TrainConfig, accelerator: Any,
                     video_path: Path | None, seed: int) -> tuple[dict[str, Any], Path | None]:
    """Generate one validation shot with ``seed``, write it to ``video_path`` (if given), return its scores."""
    data = cache.load(sample)
    reference = data["frames"].numpy()
    frames = sample.frames if sample.frames > 1 else STYLE_VALIDATION_FRAMES
    networks = metrics.get_networks(metrics.MetricsConfig(weights=metrics.weights_for(config.model,
                                                                                      config.metric_weights)))
    pipe = model.pipe
    negative = cache.load_text(DEFAULT_NEGATIVE_PROMPT)
    # The model's own shift (Wan2.2: 5.0), else the preset's (Wan2.1's rule); the pipeline's own boundary.
    shift = model.defaults.shift
    if shift is None:
        shift = PRESETS[config.preset or defaults_for(config.model).preset].shift
    sampler.apply_shift(pipe, shift)
    with torch.no_grad(), accelerator.autocast():
        # Cached text embeddings spare the (large) text encoder; the pipeline insists on encoding the
        # image itself (it refuses image and image_embeds together), which it can do from the CPU.
        output = pipe(image=Image.fromarray(reference[0]), prompt_embeds=data["prompt_embeds"][None],
                      negative_prompt_embeds=negative[None],
                      height=sample.height, width=sample.width, num_frames=frames,
                      num_inference_steps=config.val_steps, guidance_scale=config.val_guidance,
                      generator=torch.Generator("cpu").manual_seed(seed), output_type="np")
    generated = media.to_uint8(output.frames[0])
    if reference.shape[0] == 1:  # a still: how far does the shot drift from its look
        reference = np.repeat(reference, generated.shape[0], axis=0)
    with networks.lock:
        lpips = metrics.lpips_pair(networks, generated, reference[:generated.shape[0]])
        text = metrics.clip_text_features(networks, sample.item.caption)
        clip = (metrics.clip_image_features(networks, generated) @ text).mean().item()
    look = metrics.look_to(generated, reference).values["distance"]
    motion = metrics.camera_motion(generated).values
    video = media.write_video(generated, video_path) if video_path is not None else None
    return {"lpips": lpips.mean, "clip_text": clip, "look": look,
            "camera": {key: motion[key] for key in ("dx", "dy", "zoom", "label")},
            "calibrated": networks.lpips_calibrated}, video
