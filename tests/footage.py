"""Small training sets written by the tests themselves: moving-pattern clips, stills, captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cinescene import media


def moving_clip(frames: int = 24, height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    """A coloured blob drifting over a gradient: real motion, cheap to encode."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / width, yy / height, np.full_like(xx, 0.3, dtype=float)], -1) * 180
    colour = rng.integers(60, 255, 3)
    out = []
    for t in range(frames):
        cx, cy = (10 + 2.5 * t + 7 * seed) % width, height / 2 + 10 * np.sin(t / 4 + seed)
        blob = ((xx - cx) ** 2 + (yy - cy) ** 2) < 120
        frame = base.copy()
        frame[blob] = colour
        out.append(frame)
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def make_dataset(root: Path, clips: int = 3, stills: int = 2, frames: int = 24, fps: int = 16,
                 validation: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        media.write_video(moving_clip(frames, seed=i), root / f"clip{i}.mp4", fps=fps)
        (root / f"clip{i}.txt").write_text(f"a red blob drifts across a dusk gradient, take {i}")
    for i in range(stills):
        Image.fromarray(moving_clip(1, seed=10 + i)[0]).save(root / f"still{i}.png")
        (root / f"still{i}.txt").write_text(f"a still frame of the look, number {i}")
    if validation:
        make_dataset(root / "validation", clips=1, stills=0, frames=frames, fps=fps)
    return root
