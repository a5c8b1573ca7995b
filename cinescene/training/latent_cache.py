"""Preprocess once, train many times: windows and frames cut, fitted to buckets, encoded and cached.

Each training sample is cached as safetensors, keyed by a hash of exactly what
decides it, so a second run reuses everything and a change re-encodes only
what it touches:

* ``latents/<key>``: VAE latents of the window, the I2V conditioning the
  pipeline would build for its first frame (mask channels + first-frame
  latents; for style frames, of a regraded copy or blank: ``CONDITIONS``), and
  the CLIP image embedding of that frame (Wan2.1; Wan2.2 has no image
  encoder). Wan2.2 TI2V-5B's conditioning is the first frame's latents and
  the mask of where they are written (``first_frame_mask``). Key: file
  content, window, fps, bucket, conditioning kind, VAE and image-encoder identity.
* ``text/<key>``: the T5 embedding of the caption. Key: caption text and
  text-encoder identity. Editing a caption re-encodes only its text.

Training then needs only the transformer: it reads the entries through
:class:`CachedSamples`, in same-shape batches from :class:`BucketBatches`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import atomic, media, progress
from ..errors import InputError
from ..faults import failpoint
from ..settings import MAX_TEXT_TOKENS
from .dataset import DataItem
from .regrade import regrade

CACHE_VERSION = 3  # 3: regrades seeded by the sample alone (regrade_seed)
# What a sample's first-frame channels hold. first-frame: the pipeline's own I2V conditioning (motion windows,
# validation); regraded: that of a randomly regraded copy of the frame (style frames, see ``regrade``); blank:
# mask 0 and a blank frame (style frames, as trained before regrading existed); graded-window: the whole window
# under one random grade, conditioned on its own graded first frame (copies of motion windows, so the motion
# adapter sees the move under many looks and has no one look to learn with it).
CONDITIONS = ("first-frame", "regraded", "blank", "graded-window")


@dataclass(frozen=True)
class Sample:
    """One training (or validation) example: a window of a clip, or a single frame."""

    item: DataItem
    start: int  # first frame at the training fps
    frames: int  # 4k+1 for motion windows, 1 for style frames
    height: int
    width: int
    condition: str  # one of CONDITIONS
    validation: bool = False
    regrade: int = 0  # which of a frame's or window's regraded copies (each its own random grade)

    @property
    def label(self) -> str:
        return f"{self.item.name}@{self.start}" if self.item.kind == "clip" else self.item.name


def buckets(area: int, multiple: int = 16) -> list[tuple[int, int]]:
    """Aspect-ratio buckets (height, width) near ``area`` pixels, multiples of ``multiple`` (diffusers' ladder).

    ``multiple``: the model's size multiple (16; 32 for Wan2.2 TI2V-5B's 16x VAE and 2x2 patches).
    """
    from diffusers.training_utils import generate_aspect_ratio_buckets

    return generate_aspect_ratio_buckets(int(round(area**0.5)), divisibility=multiple)


def nearest_bucket(width: int, height: int, options: list[tuple[int, int]]) -> tuple[int, int]:
    from diffusers.training_utils import find_nearest_bucket

    return options[find_nearest_bucket(height, width, options)]


STYLE_VALIDATION_FRAMES = 17


def samples_for(items: list[DataItem], stage: str, *, window: int, fps: int, style_frames_per_clip: int, area: int,
                validation: bool = False, style_condition: str = "mixed", style_regrades: int = 1,
                motion_regrades: int = 0, multiple: int = 16) -> list[Sample]:
    """The samples a stage trains on: motion windows from clips, or single frames from clips and stills.

    Validation samples are the first window of each held-out clip (style: at most
    17 frames), or a held-out still, whose generated shot is scored against it. A regraded style frame
    comes ``style_regrades`` times, each copy under its own grade; a motion window comes as it is and
    ``motion_regrades`` times more, each copy graded whole under its own grade.
    """
    options = buckets(area, multiple)
    samples = []
    frames_taken = 0  # style frames so far, for mixed's alternation
    for item in items:
        height, width = nearest_bucket(item.width, item.height, options)
        if validation:
            frames = 1 if item.kind == "still" else min(window, item.frames_at(fps))
            if stage != "motion":
                frames = min(frames, STYLE_VALIDATION_FRAMES)
            frames = (frames - 1) // 4 * 4 + 1
            if stage == "motion" and item.kind != "clip":
                continue
            samples.append(Sample(item, 0, frames, height, width, "first-frame", True))
            continue
        if stage == "motion":
            if item.kind != "clip":
                continue
            count = item.frames_at(fps)
            for s in range(0, count - window + 1, window):
                samples.append(Sample(item, s, window, height, width, "first-frame"))
                samples += [Sample(item, s, window, height, width, "graded-window", regrade=r)
                            for r in range(motion_regrades)]
        else:
            count = item.frames_at(fps)
            picks = 1 if item.kind == "still" else min(style_frames_per_clip, count)
            starts = sorted({int(round(i * (count - 1) / max(picks - 1, 1))) for i in range(picks)})
            for s in starts:
                kind = style_condition
                if kind == "mixed":  # alternate, so both halves see every kind of item
                    kind = ("regraded", "blank")[frames_taken % 2]
                frames_taken += 1
                copies = style_regrades if kind == "regraded" else 1
                samples += [Sample(item, s, 1, height, width, kind, regrade=r) for r in range(copies)]
    return samples


def decode_fitted(item: DataItem, fps: int, height: int, width: int, stop: int | None = None) -> np.ndarray:
    """The item's frames resampled to ``fps`` by ffmpeg and fitted (cover + centre crop) to the bucket."""
    if item.kind == "still":
        return np.asarray(media.fit_image(media.load_image(item.path), width, height))[None]
    return media.fit_frames(media.read_video(item.path, max_frames=stop, fps=fps).frames, height, width)


def component_id(pipe: Any, model_id: str) -> dict[str, str]:
    """Identity of the encoders, for cache keys: model id plus a hash of each component's config and weight files.

    A folder's weights are stamped by name, size and modification time, not hashed: hashing a 14B model's
    encoders would cost minutes per run, and a retrained model in the same folder (``toy`` after
    ``scripts/train_toy_model.py``, a ``git pull``) must not reuse encodings of the old one. A model built
    in memory (``tiny``) has no files; its seeded weights are a function of its config.
    """

    def config_hash(module: Any) -> str:
        config = getattr(module, "config", {})
        data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        folder = Path(str(data.get("_name_or_path") or ""))
        # Bookkeeping keys out: diffusers' _use_default_values is a set written as a list, in an order that
        # changes from one process to the next, which made every new process re-encode the whole cache.
        data = {k: v for k, v in data.items() if not k.startswith("_")}
        if folder.name and folder.is_dir():
            data["weight_files"] = [(p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                    for p in sorted(folder.iterdir()) if p.suffix in (".safetensors", ".bin")]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    return {"model": model_id, "vae": config_hash(pipe.vae), "text_encoder": config_hash(pipe.text_encoder),
            "image_encoder": config_hash(pipe.image_encoder)}


def regrade_seed(sample: Sample) -> int:
    """The seed of a frame's or window's regrade: a function of the sample alone (file content, position, bucket).

    Not of the cache key, which also names the model and stamps its folder's files by modification time: a
    fresh clone of the toy model would draw other regrades, and train another adapter, than the same commit
    elsewhere.
    """
    # The first copy is named as a frame without copies: raising --style-regrades adds grades, and keeps the
    # one every frame had. A window's length is named only for windows, for the same reason.
    identity = {"file": sample.item.sha256, "start": sample.start, "size": [sample.height, sample.width],
                **({"frames": sample.frames} if sample.frames > 1 else {}),
                **({"regrade": sample.regrade} if sample.regrade else {})}
    return int(hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16], 16)


def _key(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"v": CACHE_VERSION, **data}, sort_keys=True).encode()).hexdigest()


class LatentCache:
    """Cached encodings on disk for one model's encoders."""

    def __init__(self, root: str | os.PathLike[str], encoder_id: dict[str, str], fps: int,
                 text_tokens: int = MAX_TEXT_TOKENS) -> None:
        self.root = Path(root)
        self.text_tokens = text_tokens  # the length prompts are padded to (loading.text_length)
        self.encoder_id = encoder_id
        self.fps = fps
        (self.root / "latents").mkdir(parents=True, exist_ok=True)
        (self.root / "text").mkdir(parents=True, exist_ok=True)

    def latents_path(self, sample: Sample) -> Path:
        key = _key({"file": sample.item.sha256, "start": sample.start, "frames": sample.frames, "fps": self.fps,
                    "size": [sample.height, sample.width], "condition": sample.condition, "regrade": sample.regrade,
                    "reference": sample.validation, "vae": self.encoder_id["vae"],
                    "image_encoder": self.encoder_id["image_encoder"], "model": self.encoder_id["model"]})
        return self.root / "latents" / f"{key}.safetensors"

    def text_path(self, caption: str) -> Path:
        key = _key({"caption": caption, "text_encoder": self.encoder_id["text_encoder"],
                    "model": self.encoder_id["model"], "max_length": self.text_tokens})
        return self.root / "text" / f"{key}.safetensors"

    def build(self, pipe: Any, samples: list[Sample], extra_captions: list[str] = (),
              on_event: progress.OnEvent | None = None) -> dict[str, int]:
        """Encode whatever is missing; returns how many entries were found and how many encoded.

        Progress: a ``caching`` task, one event per entry encoded.
        """
        stats = {"latents_cached": 0, "latents_encoded": 0, "text_cached": 0, "text_encoded": 0}
        captions = sorted({s.item.caption for s in samples} | set(extra_captions))
        todo = [s for s in samples if not self.latents_path(s).is_file()]
        stats["latents_cached"] = len(samples) - len(todo)
        text_todo = [c for c in captions if not self.text_path(c).is_file()]
        stats["text_cached"] = len(captions) - len(text_todo)
        total, done = len(todo) + len(text_todo), 0
        with torch.no_grad():
            for caption in text_todo:
                self._encode_text(pipe, caption)
                stats["text_encoded"] += 1
                done += 1
                progress.report(on_event, "caching", done, total)
            by_item: dict[tuple[Path, int, int], list[Sample]] = {}
            for sample in todo:
                by_item.setdefault((sample.item.path, sample.height, sample.width), []).append(sample)
            for group in by_item.values():
                # Decode each clip once for all of its windows.
                last = max(s.start + s.frames for s in group)
                frames = decode_fitted(group[0].item, self.fps, group[0].height, group[0].width, stop=last)
                for sample in group:
                    self._encode_sample(pipe, sample, frames[sample.start:sample.start + sample.frames])
                    stats["latents_encoded"] += 1
                    done += 1
                    progress.report(on_event, "caching", done, total)
        return stats

    def _encode_text(self, pipe: Any, caption: str) -> None:
        from safetensors.torch import save_file

        embeds, _ = pipe.encode_prompt(caption, do_classifier_free_guidance=False,
                                       max_sequence_length=self.text_tokens, device=pipe._execution_device)
        embeds = embeds[0].float().cpu()
        # The pipeline zero-pads to the model's text length; store only the real tokens and pad again on load.
        length = int((embeds.abs().sum(-1) > 0).nonzero().max()) + 1 if embeds.abs().sum() > 0 else 1
        with atomic.atomic_path(self.text_path(caption)) as tmp:
            save_file({"prompt_embeds": embeds[:length].contiguous()}, str(tmp))

    def _encode_sample(self, pipe: Any, sample: Sample, frames: np.ndarray) -> None:
        from safetensors.torch import save_file

        if frames.shape[0] < sample.frames:
            raise InputError(f"{sample.item.name}: only {frames.shape[0]} frames decode at {self.fps} fps, the "
                             f"window needs {sample.frames} from frame {sample.start}")
        device = pipe._execution_device
        if sample.condition == "graded-window":
            frames = regrade(frames, np.random.default_rng(regrade_seed(sample)))
        pil = [Image.fromarray(f) for f in frames]
        video = pipe.video_processor.preprocess_video(pil, height=sample.height, width=sample.width)
        latents = normalize(pipe, pipe.vae.encode(video.to(device, pipe.vae.dtype)).latent_dist.mode())
        first = pil[0]
        if sample.condition == "regraded":
            first = Image.fromarray(regrade(frames[0], np.random.default_rng(regrade_seed(sample))))
        condition = conditioning(pipe, None if sample.condition == "blank" else first, sample.frames, sample.height,
                                 sample.width)
        tensors = {"latents": latents[0].float().cpu(), **{k: v[0].float().cpu() for k, v in condition.items()}}
        if pipe.image_encoder is not None:  # Wan2.1's CLIP embedding; Wan2.2 has no image encoder
            tensors["image_embeds"] = pipe.encode_image(first, device)[0].float().cpu()
        if sample.validation:
            tensors["frames"] = torch.from_numpy(np.ascontiguousarray(frames))
        with atomic.atomic_path(self.latents_path(sample)) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
        failpoint("cache_entry")

    def load(self, sample: Sample) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        data = load_file(str(self.latents_path(sample)))
        data["prompt_embeds"] = self.load_text(sample.item.caption)
        return data

    def load_text(self, caption: str) -> torch.Tensor:
        from safetensors.torch import load_file

        embeds = load_file(str(self.text_path(caption)))["prompt_embeds"]
        return torch.cat([embeds, embeds.new_zeros(self.text_tokens - embeds.shape[0], embeds.shape[1])])


def normalize(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """VAE latents to the scale the transformer works in, as WanImageToVideoPipeline does."""
    config = pipe.vae.config
    mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1).to(latents)
    std = torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1).to(latents)
    return (latents - mean) / std


def i2v_condition(pipe: Any, first_frame: Image.Image, frames: int, height: int, width: int) -> torch.Tensor:
    """Mask channels + first-frame latents, built by the pipeline's own prepare_latents (not for TI2V)."""
    return conditioning(pipe, first_frame, frames, height, width)["condition"]


def blank_condition(pipe: Any, height: int, width: int) -> torch.Tensor:
    """The conditioning the pipeline gives frames after the first: mask 0 and the latents of a blank frame.

    Used for single-frame (style) samples, whose first-frame channels would otherwise hold the answer.
    """
    device = pipe._execution_device
    blank = torch.zeros(1, 3, 1, height, width, device=device, dtype=pipe.vae.dtype)
    latents = normalize(pipe, pipe.vae.encode(blank).latent_dist.mode()).float()
    mask = torch.zeros(1, pipe.vae_scale_factor_temporal, *latents.shape[2:], device=device)
    return torch.cat([mask, latents], dim=1)


def conditioning(pipe: Any, first_frame: Image.Image | None, frames: int, height: int, width: int
                 ) -> dict[str, torch.Tensor]:
    """What a sample is conditioned on, as the pipeline builds it (``first_frame`` None: blank).

    ``condition``: mask channels + first-frame latents (Wan2.1, Wan2.2 A14B; built by the pipeline's own
    prepare_latents), or, for TI2V (``expand_timesteps``), the first frame's latents alone with
    ``first_frame_mask``: where they replace the noisy latents. A blank TI2V sample is given no frame at all
    (the mask is all ones), as when TI2V makes a video from text alone.
    """
    device = pipe._execution_device
    z_dim, spatial, temporal = pipe.vae.config.z_dim, pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal
    shape = (1, z_dim, (frames - 1) // temporal + 1, height // spatial, width // spatial)
    if first_frame is None:
        if not pipe.config.expand_timesteps:
            return {"condition": blank_condition(pipe, height, width)}
        return {"condition": torch.zeros(*shape[:2], 1, *shape[3:], device=device),
                "first_frame_mask": torch.ones(1, 1, *shape[2:], device=device)}
    image = pipe.video_processor.preprocess(first_frame, height=height, width=width).to(device, torch.float32)
    # Passing zero latents keeps prepare_latents from drawing noise we would throw away.
    out = pipe.prepare_latents(image, 1, z_dim, height, width, frames, torch.float32, device, None, torch.zeros(shape))
    if pipe.config.expand_timesteps:
        return {"condition": out[1], "first_frame_mask": out[2]}
    return {"condition": out[1]}


# What a training step reads of an entry; image_embeds only for Wan2.1, first_frame_mask only for TI2V.
TRAINING_TENSORS = ("latents", "condition", "prompt_embeds", "image_embeds", "first_frame_mask")


class CachedSamples(torch.utils.data.Dataset):
    """What a training step reads for one sample: its cached tensors, nothing decoded or encoded again."""

    def __init__(self, cache: LatentCache, samples: list[Sample]) -> None:
        self.cache, self.samples = cache, samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        data = self.cache.load(self.samples[index])
        return {k: data[k] for k in TRAINING_TENSORS if k in data}


class BucketBatches(torch.utils.data.Sampler):
    """Batches of samples with one shape (bucket and frame count), in an order fixed by (seed, epoch).

    A pure function of its epoch, so a resumed run sees exactly the batches it would have seen.
    """

    def __init__(self, samples: list[Sample], batch_size: int, seed: int) -> None:
        self.samples, self.batch_size, self.seed, self.epoch = samples, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        groups: dict[tuple[int, int, int], list[int]] = {}
        for index in rng.permutation(len(self.samples)):
            s = self.samples[index]
            groups.setdefault((s.height, s.width, s.frames), []).append(int(index))
        batches = [g[i:i + self.batch_size] for g in groups.values() for i in range(0, len(g), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
