"""Global camera motion between frames, without learned weights.

Model: frame ``b`` is frame ``a`` seen by a camera that moved by (dx, dy) pixels and zoomed by
``zoom``: ``b(p) = a(c + d + (p - c) / zoom)``, with ``c`` the frame centre. Signs are the camera's:
dx > 0 is a pan right (the picture slides left), dy > 0 a tilt down (image y points down),
zoom > 1 a dolly in. Translation is first found by phase correlation (robust to large shifts),
then (dx, dy, log zoom) are refined by Gauss–Newton on the photometric error (a global
Lucas–Kanade fit), warping with ``torch.nn.functional.grid_sample``. Only pixels that stay inside
the frame after warping count.

Written here (about a hundred lines of numpy and torch) because none of
cinescene's libraries estimates a global camera motion without weights;
OpenCV's phaseCorrelate or scikit-image's registration would be a new
dependency and still leave the zoom to fit.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

STATIC_PX = 0.3  # below this mean displacement per frame (pixels) a shot counts as static
DIRECTIONS = ("static", "pan-left", "pan-right", "tilt-up", "tilt-down", "dolly-in", "dolly-out")


def _gray(frame: np.ndarray) -> np.ndarray:
    x = frame.astype(np.float64) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float64)
    return x @ np.asarray([0.299, 0.587, 0.114])


def phase_correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Camera translation (dx, dy) from grey frame ``a`` to ``b``, to sub-pixel precision (parabolic peak fit)."""
    h, w = a.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    fa, fb = np.fft.fft2((a - a.mean()) * window), np.fft.fft2((b - b.mean()) * window)
    cross = fa * np.conj(fb)
    surface = np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
    py, px = np.unravel_index(int(np.argmax(surface)), surface.shape)

    def refine(minus: float, centre: float, plus: float) -> float:
        denom = minus - 2 * centre + plus
        return 0.0 if abs(denom) < 1e-12 else 0.5 * (minus - plus) / denom

    fy = refine(surface[(py - 1) % h, px], surface[py, px], surface[(py + 1) % h, px])
    fx = refine(surface[py, (px - 1) % w], surface[py, px], surface[py, (px + 1) % w])
    sy, sx = py + fy, px + fx
    sy, sx = (sy - h if sy > h / 2 else sy), (sx - w if sx > w / 2 else sx)
    # The peak sits at the shift of a relative to b: the camera's own translation.
    return float(sx), float(sy)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
                    groups=c)


def _warp(image: torch.Tensor, params: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                   torch.Tensor]:
    """Sample ``image`` (1, C, H, W) at c + d + (p - c) / zoom; returns the samples and the in-frame mask."""
    _, _, h, w = image.shape
    dx, dy, log_zoom = params
    inv = torch.exp(-log_zoom)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    sx = cx + dx + (px - cx) * inv
    sy = cy + dy + (py - cy) * inv
    grid = torch.stack([sx / (w - 1) * 2 - 1, sy / (h - 1) * 2 - 1], -1)[None]
    sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    mask = (sx >= 1) & (sx <= w - 2) & (sy >= 1) & (sy <= h - 2)
    return sampled[0], mask


def estimate_pair(a: np.ndarray, b: np.ndarray, iterations: int = 30, sigma: float = 1.0) -> tuple[float, float,
                                                                                                  float]:
    """Camera (dx, dy, zoom) from frame ``a`` to frame ``b`` (H, W, 3), in pixels of these frames."""
    dx0, dy0 = phase_correlation(_gray(a), _gray(b))
    ta = _blur(torch.from_numpy(_prep(a))[None], sigma)
    tb = _blur(torch.from_numpy(_prep(b))[None], sigma)[0]
    _, c, h, w = ta.shape
    py, px = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    # Image gradients of a, warped together with a, give the Jacobian of the residual.
    gx = torch.zeros_like(ta)
    gy = torch.zeros_like(ta)
    gx[..., 1:-1] = (ta[..., 2:] - ta[..., :-2]) / 2
    gy[..., 1:-1, :] = (ta[..., 2:, :] - ta[..., :-2, :]) / 2
    stack = torch.cat([ta, gx, gy], 1)
    params = torch.tensor([dx0, dy0, 0.0], dtype=torch.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    for _ in range(iterations):
        sampled, mask = _warp(stack, params, py, px)
        if mask.sum() < 16:
            break
        value, sgx, sgy = sampled[:c], sampled[c:2 * c], sampled[2 * c:]
        residual = (value - tb)[:, mask]  # (C, N)
        inv = math.exp(-float(params[2]))
        # d sample / d log_zoom = -(p - c) / zoom, per axis.
        jz = sgx[:, mask] * (-(px[mask] - cx) * inv) + sgy[:, mask] * (-(py[mask] - cy) * inv)
        jac = torch.stack([sgx[:, mask].reshape(-1), sgy[:, mask].reshape(-1), jz.reshape(-1)], 1)
        hessian = jac.T @ jac + torch.eye(3, dtype=torch.float64) * 1e-9
        step = torch.linalg.solve(hessian, -(jac.T @ residual.reshape(-1)))
        params = params + step
        params[2] = params[2].clamp(-0.3, 0.3)
        if float(step[:2].abs().max()) < 1e-3 and abs(float(step[2])) < 1e-5:
            break
    dx, dy, log_zoom = (float(v) for v in params)
    if not all(math.isfinite(v) for v in (dx, dy, log_zoom)):
        return dx0, dy0, 1.0
    return dx, dy, math.exp(log_zoom)


def _prep(frame: np.ndarray) -> np.ndarray:
    x = frame.astype(np.float64) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float64)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def mean_displacement(dx: float, dy: float, zoom: float, height: int, width: int) -> float:
    """Average length, over the frame's pixels, of the displacement (dx, dy, zoom) gives them (pixels)."""
    py, px = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    ux = dx + (px - cx) * (1 / zoom - 1)
    uy = dy + (py - cy) * (1 / zoom - 1)
    return float(np.hypot(ux, uy).mean())


def mean_radius(height: int, width: int) -> float:
    """Mean distance of a pixel from the centre: converts a zoom factor to pixels of edge motion."""
    py, px = np.mgrid[0:height, 0:width].astype(np.float64)
    return float(np.hypot(px - (width - 1) / 2, py - (height - 1) / 2).mean())


@dataclass
class CameraMotion:
    """Per-pair estimates and their summary; signs are the camera's (dx > 0: pan right, zoom > 1: dolly in)."""

    pairs: np.ndarray  # (T-1, 3): dx, dy, zoom per consecutive frame pair
    height: int
    width: int
    dx: float = 0.0  # means per frame
    dy: float = 0.0
    zoom: float = 1.0  # geometric mean
    label: str = "static"
    magnitude: float = 0.0  # mean pixel displacement per frame of the mean motion
    extra: dict[str, Any] = field(default_factory=dict)

    def along(self, direction: str) -> float:
        """Signed motion per frame in pixels along a named direction (for dolly: zoom as edge pixels)."""
        if direction == "pan-right":
            return self.dx
        if direction == "pan-left":
            return -self.dx
        if direction == "tilt-down":
            return self.dy
        if direction == "tilt-up":
            return -self.dy
        if direction in ("dolly-in", "dolly-out"):
            value = math.log(self.zoom) * mean_radius(self.height, self.width)
            return value if direction == "dolly-in" else -value
        if direction == "static":
            return -self.magnitude
        raise InputError(f"unknown camera direction {direction!r}: one of {', '.join(DIRECTIONS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"dx": self.dx, "dy": self.dy, "zoom": self.zoom, "label": self.label, "magnitude": self.magnitude,
                "pairs": self.pairs.round(4).tolist()}


def label_for(dx: float, dy: float, zoom: float, height: int, width: int, static_px: float = STATIC_PX) -> str:
    zoom_px = abs(math.log(zoom)) * mean_radius(height, width)
    if max(abs(dx), abs(dy), zoom_px) < static_px:
        return "static"
    if zoom_px > max(abs(dx), abs(dy)):
        return "dolly-in" if zoom > 1 else "dolly-out"
    if abs(dx) >= abs(dy):
        return "pan-right" if dx > 0 else "pan-left"
    return "tilt-down" if dy > 0 else "tilt-up"


_threads_lock = threading.Lock()


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for the duration, one caller at a time (so the old count is restored).

    The camera fit is hundreds of tiny tensor ops: a second thread buys nothing on them, and on a busy
    CPU every parallel region waits for that thread to be scheduled (17 frames at 32 x 48 took 26 s
    instead of 0.25 s on two cores shared with another job).
    """
    with _threads_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def measure(frames: np.ndarray, start: int = 0) -> CameraMotion:
    """Camera motion of a clip (T, H, W, 3) over its consecutive frame pairs from ``start``, and a summary."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] - start < 2:
        raise InputError(f"camera motion needs frames (T, H, W, 3) with at least two from frame {start}, "
                         f"got {frames.shape}")
    with one_torch_thread():
        pairs = np.asarray([estimate_pair(frames[i], frames[i + 1]) for i in range(start, frames.shape[0] - 1)])
    _, h, w, _ = frames.shape
    dx, dy = float(pairs[:, 0].mean()), float(pairs[:, 1].mean())
    zoom = float(np.exp(np.log(pairs[:, 2]).mean()))
    return CameraMotion(pairs, h, w, dx, dy, zoom, label_for(dx, dy, zoom, h, w), mean_displacement(dx, dy, zoom, h, w))
