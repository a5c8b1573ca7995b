"""Per-video and per-pair scores: CLIP-SIM, LPIPS, temporal stability, flicker, camera motion and look.

Definitions:

* ``clip_text``: cosine between the prompt's and each frame's CLIP embedding.
* ``clip_image``: cosine between the input still's and each frame's CLIP embedding.
* ``clip_consistency``: cosine between consecutive frames' CLIP embeddings.
* ``lpips_pair``: LPIPS(base frame i, tuned frame i).
* ``lpips_temporal``: LPIPS between consecutive frames of one video (lower is steadier).
* ``flicker``: VBench's temporal flickering, (255 - mean |frame t+1 - frame t|) / 255.
* ``camera``: the global camera motion (``camera``): dx, dy in pixels per frame of the video
  (dx > 0 pans right, dy > 0 tilts down), zoom per frame (> 1 dollies in), a label, and the
  estimate of every consecutive pair.
* ``look`` (given reference frames): the look distance (``look``: Fréchet distance of Lab
  Gaussians, squared Lab units) to them, with saturation and contrast of both sides.
* ``lpips_reference`` (given reference frames): LPIPS(frame i, reference frame i).

Every per-frame metric keeps its series, not only the mean. A metric computed
by a network with random weights (offline, and only when the caller allowed
it) is marked ``calibrated: false`` wherever it travels; camera and look use
no network and are always calibrated.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import camera, look, media
from .environment import env_flag
from .errors import InputError
from .lora_formats import PICKLE_SUFFIXES
from .placement import resolve_device
from .settings import METRIC_WEIGHTS, TINY_MODELS, TOY

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # what torchvision (and so lpips) looks for in torch's hub cache
# Metrics measured on consecutive frame pairs (t-1, t): their series have one value fewer than the video has
# frames, and a per-frame plot draws value i at frame i + 1.
CONSECUTIVE = frozenset({"clip_consistency", "lpips_temporal", "flicker", "camera"})
# The camera fit runs on frames box-downscaled to about this many pixels: at 480 x 832 it is ~20x faster
# (the Gauss-Newton cost grows with the pixels) and a global pan is still found to a few hundredths of a pixel.
CAMERA_MAX_PIXELS = 128 * 224


def offline() -> bool:
    """True when cinescene must not try downloads (tests, air-gapped machines)."""
    return env_flag("HF_HUB_OFFLINE") or env_flag("CINESCENE_OFFLINE")


@dataclass(frozen=True)
class MetricsConfig:
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "openai"  # an open_clip tag, or a local .safetensors checkpoint
    lpips_net: str = "alex"
    lpips_version: str = "0.1"
    # "pretrained": real weights or a clear error; "fallback": real weights if they can be had, else random;
    # "random": random without looking (the tiny demo, whose pictures are noise anyway). Random weights
    # make every number they touch uncalibrated.
    weights: str = "pretrained"
    device: str = "auto"
    batch_size: int = 16


@dataclass
class Series:
    """One metric over the frames (or frame pairs) of a video."""

    values: list[float]
    calibrated: bool
    higher_is_better: bool

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "series": [float(v) for v in self.values], "calibrated": self.calibrated,
                "higher_is_better": self.higher_is_better}


@dataclass
class Measurement:
    """A whole-video measurement with named values (camera motion, look distance); no network, so calibrated.

    ``headline`` names the values that stand for it as numbers (differences, tables, eval columns).
    """

    values: dict[str, Any]
    headline: tuple[str, ...]
    calibrated: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {**self.values, "calibrated": self.calibrated}


Score = Series | Measurement


def numbers(scores: dict[str, Score]) -> dict[str, float]:
    """Every score as numbers: a series by its mean, a measurement by ``NAME_VALUE`` (camera_dx, look_distance)."""
    out: dict[str, float] = {}
    for name, score in scores.items():
        if isinstance(score, Series):
            out[name] = score.mean
        else:
            out.update({f"{name}_{key}": float(score.values[key]) for key in score.headline})
    return out


@dataclass
class MetricNetworks:
    """CLIP and LPIPS, loaded once; ``*_calibrated`` is False when their weights are random."""

    config: MetricsConfig
    device: torch.device
    clip: Any
    clip_preprocess: Any
    tokenizer: Any
    clip_calibrated: bool
    lpips: Any
    lpips_calibrated: bool
    notes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "clip": {"model": cfg.clip_model, "weights": cfg.clip_pretrained if self.clip_calibrated else "random",
                     "calibrated": self.clip_calibrated},
            "lpips": {"net": cfg.lpips_net, "version": cfg.lpips_version,
                      "weights": "imagenet+lpips" if self.lpips_calibrated else "random trunk",
                      "calibrated": self.lpips_calibrated},
            "notes": self.notes,
        }


def weights_for(model: str, requested: str | None = None) -> str:
    """The weight policy for scoring ``model``'s videos: as requested, else random for the tiny models, fallback
    for toy, else pretrained.

    The tiny models' pictures are noise: scoring them with downloaded CLIP/LPIPS weights buys nothing.
    The toy model runs where there may be no weights at all (a laptop, a free CPU Space): real ones
    when they are there, random ones with a note otherwise. Its look and camera numbers need none.
    """
    if requested:
        return requested
    if model in TINY_MODELS:
        return "random"
    return "fallback" if model == TOY else "pretrained"


def _load_clip(cfg: MetricsConfig, notes: list[str]) -> tuple[Any, Any, Any, bool]:
    import open_clip

    pretrained = "" if cfg.weights == "random" else cfg.clip_pretrained
    if pretrained and Path(pretrained).suffix.lower() in PICKLE_SUFFIXES:
        raise InputError(f"CLIP weights {pretrained}: only .safetensors checkpoints are read")
    if pretrained and pretrained.endswith(".safetensors") and not Path(pretrained).is_file():
        raise InputError(f"CLIP weights file not found: {pretrained}")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(cfg.clip_model, pretrained=pretrained or None)
        calibrated = bool(pretrained)
    except RuntimeError as err:
        if cfg.weights != "fallback":
            raise InputError(
                f"CLIP {cfg.clip_model} weights {pretrained!r} are not available here ({str(err)[:120]}). Put them "
                "in the Hugging Face cache (run once with internet), pass a local .safetensors with --clip-pretrained, "
                "or allow uncalibrated random weights with --metric-weights fallback"
            ) from err
        model, _, preprocess = open_clip.create_model_and_transforms(cfg.clip_model, pretrained=None)
        calibrated = False
    if not calibrated:
        notes.append(f"CLIP {cfg.clip_model} runs on random weights: CLIP-SIM numbers are uncalibrated")
    return model.eval(), preprocess, open_clip.get_tokenizer(cfg.clip_model), calibrated


def _load_lpips(cfg: MetricsConfig, notes: list[str]) -> tuple[Any, bool]:
    import lpips

    if cfg.lpips_net != "alex":
        raise InputError("only LPIPS with the AlexNet trunk ('alex', the paper's default) is supported")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    reason = "random weights were asked for"
    if cfg.weights != "random":
        if cached.is_file() or not offline():
            try:
                return _lpips(lpips, cfg, random_trunk=False), True
            except (OSError, RuntimeError) as err:  # download failed
                reason = str(err)[:120]
        else:
            reason = "offline and not in torch's cache"
    if cfg.weights == "pretrained":
        raise InputError(
            f"LPIPS needs torchvision's AlexNet weights ({reason}): put {ALEXNET_FILE} into {cached.parent} "
            "(from https://download.pytorch.org/models/), or allow uncalibrated random weights with "
            "--metric-weights fallback"
        )
    notes.append("LPIPS runs on a random AlexNet trunk: LPIPS numbers are uncalibrated")
    return _lpips(lpips, cfg, random_trunk=True), False


def _lpips(lpips: Any, cfg: MetricsConfig, random_trunk: bool) -> Any:
    with warnings.catch_warnings():
        # lpips still calls torchvision's deprecated ``pretrained=`` argument.
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        return lpips.LPIPS(net="alex", version=cfg.lpips_version, pnet_rand=random_trunk, verbose=False).eval()


def load_networks(cfg: MetricsConfig) -> MetricNetworks:
    if cfg.weights not in METRIC_WEIGHTS:
        raise InputError(f"metric weights {cfg.weights!r}: choose {', '.join(METRIC_WEIGHTS)}")
    notes: list[str] = []
    device = resolve_device(cfg.device)
    # Random fallbacks must not depend on whatever the caller's global RNG holds.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip, preprocess, tokenizer, clip_ok = _load_clip(cfg, notes)
        lp, lpips_ok = _load_lpips(cfg, notes)
    return MetricNetworks(cfg, device, clip.to(device), preprocess, tokenizer, clip_ok, lp.to(device), lpips_ok,
                          notes)


_lock = threading.Lock()
_cached: MetricNetworks | None = None


def get_networks(cfg: MetricsConfig) -> MetricNetworks:
    """The process-wide metric networks: loaded on first use, replaced only for a different config."""
    global _cached
    with _lock:
        if _cached is None or _cached.config != cfg:
            _cached = None
            _cached = load_networks(cfg)
        return _cached


# -- computations --------------------------------------------------------------------------------------------


def _check_frames(frames: np.ndarray, what: str = "video") -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"{what}: expected uint8 frames of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise InputError(f"{what} has no frames")
    return frames


def _need_two(frames: np.ndarray, metric: str) -> None:
    if frames.shape[0] < 2:
        raise InputError(f"{metric} compares consecutive frames and needs at least 2; the video has 1")


@torch.no_grad()
def clip_image_features(nets: MetricNetworks, frames: np.ndarray | list[Image.Image]) -> torch.Tensor:
    """L2-normalised CLIP embeddings, batched; each image goes through open_clip's own preprocessing."""
    images = [Image.fromarray(f) if isinstance(f, np.ndarray) else f for f in frames]
    feats = []
    for start in range(0, len(images), nets.config.batch_size):
        batch = torch.stack([nets.clip_preprocess(im) for im in images[start:start + nets.config.batch_size]])
        feats.append(nets.clip.encode_image(batch.to(nets.device)).float())
    out = torch.cat(feats)
    return out / out.norm(dim=-1, keepdim=True)


@torch.no_grad()
def clip_text_features(nets: MetricNetworks, text: str) -> torch.Tensor:
    feats = nets.clip.encode_text(nets.tokenizer([text]).to(nets.device)).float()[0]
    return feats / feats.norm()


def flicker(frames: np.ndarray) -> Series:
    """VBench temporal flickering per consecutive pair; 1.0 means no change at all."""
    frames = _check_frames(frames)
    _need_two(frames, "flicker")
    diffs = np.abs(frames[1:].astype(np.int16) - frames[:-1].astype(np.int16)).reshape(frames.shape[0] - 1, -1)
    return Series(((255.0 - diffs.mean(axis=1)) / 255.0).tolist(), calibrated=True, higher_is_better=True)


def _to_lpips_input(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@torch.no_grad()
def _lpips_batched(nets: MetricNetworks, a: np.ndarray, b: np.ndarray) -> list[float]:
    values = []
    for start in range(0, a.shape[0], nets.config.batch_size):
        end = start + nets.config.batch_size
        x, y = _to_lpips_input(a[start:end], nets.device), _to_lpips_input(b[start:end], nets.device)
        values.extend(nets.lpips(x, y).flatten().float().cpu().tolist())
    return values


def check_same_shape(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    """Paired metrics compare frame i with frame i: both videos need the same frame count and size."""
    if tuple(a) != tuple(b):
        raise InputError(f"the videos differ: {a[0]} frames {a[2]}x{a[1]} against {b[0]} frames {b[2]}x{b[1]}; "
                         "paired metrics compare frame i with frame i, so they must match")


def lpips_pair(nets: MetricNetworks, a: np.ndarray, b: np.ndarray) -> Series:
    """LPIPS of frame i of ``a`` against frame i of ``b``. Both videos must have the same frame count and size."""
    a, b = _check_frames(a, "first video"), _check_frames(b, "second video")
    check_same_shape(a.shape, b.shape)
    return Series(_lpips_batched(nets, a, b), nets.lpips_calibrated, higher_is_better=False)


def lpips_temporal(nets: MetricNetworks, frames: np.ndarray) -> Series:
    frames = _check_frames(frames)
    _need_two(frames, "LPIPS temporal")
    return Series(_lpips_batched(nets, frames[:-1], frames[1:]), nets.lpips_calibrated, higher_is_better=False)


def camera_motion(frames: np.ndarray) -> Measurement:
    """The global camera motion (``camera.measure``), in pixels of ``frames`` whatever size it was fitted at."""
    frames = _check_frames(frames)
    _need_two(frames, "camera motion")
    _, height, width, _ = frames.shape
    scale = min(1.0, math.sqrt(CAMERA_MAX_PIXELS / (height * width)))
    small = frames
    if scale < 1.0:
        size = (max(16, round(width * scale)), max(16, round(height * scale)))
        small = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BOX)) for f in frames])
    fit = camera.measure(small)
    sx, sy = width / small.shape[2], height / small.shape[1]
    dx, dy = fit.dx * sx, fit.dy * sy
    # Label and magnitude at the video's own size: the static threshold is in its pixels.
    motion = camera.CameraMotion(fit.pairs * np.asarray([sx, sy, 1.0]), height, width, dx, dy, fit.zoom,
                                 camera.label_for(dx, dy, fit.zoom, height, width),
                                 camera.mean_displacement(dx, dy, fit.zoom, height, width))
    return Measurement({**motion.to_dict(), "fitted_at": list(small.shape[1:3])}, ("dx", "dy", "zoom", "magnitude"))


def look_to(frames: np.ndarray, reference: np.ndarray) -> Measurement:
    """The look distance of ``frames`` to ``reference`` frames (``look.look_distance``), lower is closer."""
    return Measurement(look.look_distance(_check_frames(frames), _check_frames(reference, "reference")),
                       ("distance", "saturation", "contrast"))


def fit_reference(reference: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Reference frames cover-resized and centre-cropped to ``frames``' size, so both show the same framing."""
    reference = _check_frames(reference, "reference")
    return media.fit_frames(reference, frames.shape[1], frames.shape[2])


def score_video(nets: MetricNetworks, frames: np.ndarray, prompt: str | None = None,
                image: Image.Image | None = None, reference: np.ndarray | None = None) -> dict[str, Score]:
    """Every single-video metric; CLIP features of the frames are computed once and shared.

    ``reference`` (frames of a reference clip, any size and length) adds the look distance to it and
    LPIPS against it frame by frame, over the frames both have.
    """
    frames = _check_frames(frames)
    _need_two(frames, "the temporal metrics (consistency, LPIPS temporal, flicker)")
    ref = fit_reference(reference, frames) if reference is not None else None
    scores: dict[str, Score] = {}
    with nets.lock:
        feats = clip_image_features(nets, frames)
        if prompt:
            text = clip_text_features(nets, prompt)
            scores["clip_text"] = Series((feats @ text).cpu().tolist(), nets.clip_calibrated, True)
        if image is not None:
            still = clip_image_features(nets, [image])[0]
            scores["clip_image"] = Series((feats @ still).cpu().tolist(), nets.clip_calibrated, True)
        scores["clip_consistency"] = Series((feats[1:] * feats[:-1]).sum(-1).cpu().tolist(),
                                            nets.clip_calibrated, True)
        scores["lpips_temporal"] = lpips_temporal(nets, frames)
        if ref is not None:
            count = min(len(ref), len(frames))
            scores["lpips_reference"] = lpips_pair(nets, frames[:count], ref[:count])
    scores["flicker"] = flicker(frames)
    # No network below: outside the lock, so other requests' CLIP and LPIPS need not wait for them.
    scores["camera"] = camera_motion(frames)
    if ref is not None:
        scores["look"] = look_to(frames, ref)
    return scores


def score_pair(nets: MetricNetworks, base: np.ndarray, tuned: np.ndarray, prompt: str | None = None,
               image: Image.Image | None = None, labels: tuple[str, str] = ("base", "tuned"),
               reference: np.ndarray | None = None) -> dict[str, Any]:
    """Both videos' scores, their paired LPIPS and look distance, and second minus first for every shared number.

    ``look_pair`` is the look distance of the second video to the first (its saturation and contrast are the
    second's, ``reference_*`` the first's).
    """
    first, second = labels
    videos = {first: score_video(nets, base, prompt, image, reference),
              second: score_video(nets, tuned, prompt, image, reference)}
    with nets.lock:
        pair: dict[str, Score] = {"lpips_pair": lpips_pair(nets, base, tuned)}
    pair["look_pair"] = look_to(tuned, base)
    a, b = numbers(videos[first]), numbers(videos[second])
    return report(nets, videos, pair, {name: b[name] - a[name] for name in a})


def report(nets: MetricNetworks, videos: dict[str, dict[str, Score]], pair: dict[str, Score] | None = None,
           difference: dict[str, float] | None = None) -> dict[str, Any]:
    """The JSON form used by metrics.json, the CLI and the UI."""
    uncalibrated = sorted({name for scores in [*videos.values(), pair or {}] for name, s in scores.items()
                           if not s.calibrated})
    out: dict[str, Any] = {
        "networks": nets.describe(),
        "uncalibrated": uncalibrated,
        "videos": {label: {name: s.to_dict() for name, s in scores.items()} for label, scores in videos.items()},
    }
    if pair:
        out["pair"] = {name: s.to_dict() for name, s in pair.items()}
    if difference:
        out["difference"] = {name: float(v) for name, v in difference.items()}
    return out
