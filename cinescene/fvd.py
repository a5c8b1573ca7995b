"""Frechet Video Distance with the StyleGAN-V protocol.

I3D is StyleGAN-V's TorchScript export (``i3d_torchscript.pt``), loaded from a
local file (``detectors``); it is called with ``rescale=False, resize=False,
return_features=True`` and returns 400-d logits. Each video contributes its
first ``clip_frames`` frames, short side scaled to 224 (bilinear) and
centre-cropped, values in [-1, 1]. FVD is the Frechet distance of the two
feature sets, named by the clip length as StyleGAN-V does: FVD_16 on 16-frame
clips, FVD_128 on 128-frame clips. The number of videos is reported beside it:
the statistic is biased by the sample size, so numbers on different counts do
not compare either.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from . import detectors, frechet
from .errors import InputError

RESOLUTION = 224
FEATURE_DIM = 400
# StyleGAN-V feeds I3D 128 frames per batch (NUM_FRAMES_IN_BATCH): 8 clips of 16 frames, 1 of 128.
FRAMES_PER_BATCH = 128
PROTOCOL = "StyleGAN-V (I3D logits, short side 224, centre crop, [-1, 1])"
I3D = detectors.DetectorFile(
    metric="FVD", network="I3D", filename="i3d_torchscript.pt",
    url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt", env="CINESCENE_I3D", flag="--i3d",
)


def load_i3d(path: str | os.PathLike[str] | None = None) -> torch.jit.ScriptModule:
    """StyleGAN-V's I3D from a local TorchScript file (default ``~/.cache/cinescene/i3d_torchscript.pt``)."""
    return detectors.load(I3D, path)


def preprocess(frames: np.ndarray, clip_frames: int = 16) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, clip_frames, 224, 224) float in [-1, 1], as StyleGAN-V prepares videos."""
    if frames.shape[0] < clip_frames:
        raise InputError(f"FVD_{clip_frames} uses {clip_frames}-frame clips; a video has only {frames.shape[0]} frames")
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
def features(i3d: torch.jit.ScriptModule, videos: list[np.ndarray], clip_frames: int = 16,
             device: torch.device | None = None) -> np.ndarray:
    """(videos, 400) I3D logits of each video's first ``clip_frames`` frames, batched as StyleGAN-V does."""
    device = device or torch.device("cpu")
    i3d = i3d.to(device)
    batch_size = max(1, FRAMES_PER_BATCH // clip_frames)
    out = []
    for start in range(0, len(videos), batch_size):
        chunk = videos[start:start + batch_size]
        batch = torch.stack([preprocess(v, clip_frames) for v in chunk]).to(device)
        feats = i3d(batch, rescale=False, resize=False, return_features=True)
        detectors.check_features(I3D, feats, len(chunk), FEATURE_DIM)
        out.append(feats.float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def fvd_from_features(generated: np.ndarray, reference: np.ndarray, clip_frames: int) -> frechet.DistanceResult:
    """FVD_{clip_frames} from (videos, 400) I3D features of each side."""
    value = frechet.frechet_distance(generated, reference)
    return frechet.DistanceResult("FVD", clip_frames, value, len(generated), len(reference), len(generated),
                                  len(reference), PROTOCOL)


def fvd(i3d: torch.jit.ScriptModule, videos: list[np.ndarray], reference: list[np.ndarray], clip_frames: int = 16,
        device: torch.device | None = None) -> frechet.DistanceResult:
    """FVD_{clip_frames} of ``videos`` against ``reference`` (each a list of (T, H, W, 3) uint8 arrays)."""
    frechet.check_sets(videos, reference, clip_frames, f"FVD_{clip_frames}")
    return fvd_from_features(features(i3d, videos, clip_frames, device), features(i3d, reference, clip_frames, device),
                             clip_frames)
