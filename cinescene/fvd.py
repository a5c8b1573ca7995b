"""Frechet Video Distance with the StyleGAN-V protocol.

I3D is StyleGAN-V's TorchScript export (``i3d_torchscript.pt``), loaded from a
local file; it is called with ``rescale=False, resize=False,
return_features=True`` and returns 400-d logits. Each video contributes one
16-frame clip, its short side scaled to 224 (bilinear) and centre-cropped,
values in [-1, 1]. FVD is the Frechet distance of the two feature sets, and
its name carries the number of videos (FVD-16 on 16 videos): the statistic is
biased by the sample size, so numbers on different counts do not compare.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

CLIP_FRAMES = 16
RESOLUTION = 224
FEATURE_DIM = 400
I3D_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt"
DEFAULT_I3D = Path(os.environ.get("CINESCENE_I3D", Path.home() / ".cache" / "cinescene" / "i3d_torchscript.pt"))


@dataclass
class FVDResult:
    value: float
    num_videos: int
    num_reference: int
    frames: int = CLIP_FRAMES

    @property
    def name(self) -> str:
        return f"FVD-{self.num_videos}"

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "videos": self.num_videos, "reference_videos":
                self.num_reference, "clip_frames": self.frames, "protocol": "StyleGAN-V (I3D logits, 224 crop)"}


_lock = threading.Lock()
_loaded: dict[Path, torch.jit.ScriptModule] = {}


def load_i3d(path: str | os.PathLike[str] | None = None) -> torch.jit.ScriptModule:
    """The I3D detector from a local TorchScript file, loaded once per path.

    TorchScript runs code compiled into the file: use the file from StyleGAN-V's
    authors (the URL below) or one you built yourself.
    """
    path = Path(path or DEFAULT_I3D).expanduser()
    if not path.is_file():
        raise InputError(
            f"FVD needs the I3D detector file {path}: download StyleGAN-V's i3d_torchscript.pt ({I3D_URL}) "
            f"and put it there, or pass its path with --i3d"
        )
    with _lock:
        if path not in _loaded:
            try:
                _loaded[path] = torch.jit.load(str(path), map_location="cpu").eval()
            except (RuntimeError, ValueError) as err:
                raise InputError(f"{path.name} is not a TorchScript I3D model: {str(err)[:160]}") from err
        return _loaded[path]


def preprocess(frames: np.ndarray, clip_frames: int = CLIP_FRAMES) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, clip_frames, 224, 224) float in [-1, 1], as StyleGAN-V prepares videos."""
    if frames.shape[0] < clip_frames:
        raise InputError(f"FVD uses {clip_frames}-frame clips; a video has only {frames.shape[0]} frames")
    video = torch.from_numpy(np.ascontiguousarray(frames[:clip_frames])).permute(3, 0, 1, 2).float() / 255.0
    _, _, h, w = video.shape
    scale = RESOLUTION / min(h, w)
    size = (RESOLUTION, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), RESOLUTION)
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)
    _, _, h, w = video.shape
    top, left = (h - RESOLUTION) // 2, (w - RESOLUTION) // 2
    video = video[:, :, top:top + RESOLUTION, left:left + RESOLUTION]
    return ((video - 0.5) * 2).contiguous()


@torch.no_grad()
def features(i3d: torch.jit.ScriptModule, videos: list[np.ndarray], batch_size: int = 8,
             device: torch.device | None = None) -> np.ndarray:
    device = device or torch.device("cpu")
    i3d = i3d.to(device)
    out = []
    for start in range(0, len(videos), batch_size):
        batch = torch.stack([preprocess(v) for v in videos[start:start + batch_size]]).to(device)
        feats = i3d(batch, rescale=False, resize=False, return_features=True)
        out.append(feats.float().cpu().numpy())
    feats = np.concatenate(out)
    if feats.ndim != 2:
        raise InputError(f"the I3D model returned features of shape {feats.shape}, expected (videos, {FEATURE_DIM})")
    return feats.astype(np.float64)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, eps: float = 1e-6) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 sqrt(S_a S_b)), with the usual guards for sqrtm."""
    import scipy.linalg

    if feats_a.shape[0] < 2 or feats_b.shape[0] < 2:
        raise InputError(f"FVD needs at least 2 videos on each side (got {feats_a.shape[0]} and {feats_b.shape[0]}):"
                         " a covariance needs two samples")
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    sigma_a, sigma_b = np.cov(feats_a, rowvar=False), np.cov(feats_b, rowvar=False)
    covmean, _ = scipy.linalg.sqrtm(sigma_a @ sigma_b, disp=False)
    if not np.isfinite(covmean).all():
        # Few samples make the covariances singular: nudge both diagonals, as pytorch-fid does.
        offset = np.eye(sigma_a.shape[0]) * eps
        covmean, _ = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset), disp=False)
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"matrix square root has a large imaginary part ({np.abs(covmean.imag).max():.3g})")
        covmean = covmean.real
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean))


def fvd(i3d: torch.jit.ScriptModule, videos: list[np.ndarray], reference: list[np.ndarray],
        device: torch.device | None = None) -> FVDResult:
    if len(videos) < 2 or len(reference) < 2:
        raise InputError(f"FVD needs at least 2 generated and 2 reference videos (got {len(videos)} and "
                         f"{len(reference)})")
    value = frechet_distance(features(i3d, videos, device=device), features(i3d, reference, device=device))
    return FVDResult(value=value, num_videos=len(videos), num_reference=len(reference))
