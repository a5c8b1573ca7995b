"""Frechet Inception Distance on video frames, with StyleGAN2-ADA's (and StyleGAN-V's) network.

Inception is NVIDIA's TorchScript export ``inception-2015-12-05.pt`` (the
TensorFlow Inception of the original FID), loaded from a local file
(``detectors``). As in StyleGAN2-ADA's metrics it is called on uint8
(N, 3, H, W) frames at their own size, resizes them to 299 itself, and with
``return_features=True`` returns the 2048-d pool features. FID_N pools every
one of the first N frames of each video on each side (videos x N feature
vectors per side) and takes the Frechet distance of the two sets: FID_128 sees
the same frames as FVD_128, one frame at a time.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from . import detectors, frechet
from .errors import InputError

FEATURE_DIM = 2048
FRAMES_PER_BATCH = 32
PROTOCOL = "StyleGAN2-ADA (Inception pool features, uint8 frames resized to 299 by the network)"
INCEPTION = detectors.DetectorFile(
    metric="FID", network="Inception", filename="inception-2015-12-05.pt",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    env="CINESCENE_INCEPTION", flag="--inception",
)


def load_inception(path: str | os.PathLike[str] | None = None) -> torch.jit.ScriptModule:
    """NVIDIA's Inception from a local TorchScript file (default ``~/.cache/cinescene/inception-2015-12-05.pt``)."""
    return detectors.load(INCEPTION, path)


@torch.no_grad()
def frame_features(inception: torch.jit.ScriptModule, frames: np.ndarray,
                   device: torch.device | None = None) -> np.ndarray:
    """(T, 2048) Inception features of (T, H, W, 3) uint8 frames, in batches of FRAMES_PER_BATCH."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"FID takes (frames, height, width, 3) uint8 video, got {frames.dtype} {frames.shape}")
    device = device or torch.device("cpu")
    inception = inception.to(device)
    out = []
    for start in range(0, len(frames), FRAMES_PER_BATCH):
        chunk = np.ascontiguousarray(frames[start:start + FRAMES_PER_BATCH])
        batch = torch.from_numpy(chunk).permute(0, 3, 1, 2).to(device)
        feats = inception(batch, return_features=True)
        detectors.check_features(INCEPTION, feats, len(chunk), FEATURE_DIM)
        out.append(feats.float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def video_features(inception: torch.jit.ScriptModule, videos: list[np.ndarray], max_frames: int | None = None,
                   device: torch.device | None = None) -> list[np.ndarray]:
    """Per-video frame features of the first ``max_frames`` frames (all when None); FID_N slices them."""
    return [frame_features(inception, video[:max_frames], device) for video in videos]


def fid_from_features(generated: list[np.ndarray], reference: list[np.ndarray],
                      clip_frames: int) -> frechet.DistanceResult:
    """FID_{clip_frames} from per-video frame features (each (T_i, 2048), T_i >= clip_frames)."""
    frechet.check_sets(generated, reference, clip_frames, f"FID_{clip_frames}")
    gen = np.concatenate([f[:clip_frames] for f in generated])
    ref = np.concatenate([f[:clip_frames] for f in reference])
    return frechet.DistanceResult("FID", clip_frames, frechet.frechet_distance(gen, ref), len(generated),
                                  len(reference), len(gen), len(ref), PROTOCOL)


def fid(inception: torch.jit.ScriptModule, videos: list[np.ndarray], reference: list[np.ndarray], clip_frames: int,
        device: torch.device | None = None) -> frechet.DistanceResult:
    """FID_{clip_frames} of ``videos`` against ``reference`` (each a list of (T, H, W, 3) uint8 arrays)."""
    # Checked before any frame goes through the network: a short clip fails in a moment, not after minutes.
    frechet.check_sets(videos, reference, clip_frames, f"FID_{clip_frames}")
    return fid_from_features(video_features(inception, videos, clip_frames, device),
                             video_features(inception, reference, clip_frames, device), clip_frames)
