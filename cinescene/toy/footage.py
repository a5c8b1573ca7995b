"""Deterministic toy footage: coloured shapes on patterned backgrounds, a colour grade, a camera move.

Everything is a pure function of its arguments (numpy only; PIL and imageio just write files), so a
clip can be rebuilt from its (scene, look, move, seed) at any size. The scene is an unbounded
procedural canvas in *view units* (1.0 = the view's height, origin at the centre of the first
frame's view); the camera is a window over it that moves and scales by a few pixels per frame.
Each frame is supersampled (``SUPERSAMPLE`` x ``SUPERSAMPLE`` points per pixel, box-filtered), so
edges are anti-aliased and sub-pixel camera motion is exact.

Two controls are independent and any combination is allowed:

* ``look``: a colour grade applied to the rendered frame (:data:`LOOKS`).
* ``move``: the camera path (:data:`MOVES`). Every path starts at the canonical view, so the first
  frame of a scene is the same whatever the move: it never gives the move away.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic, media
from ..errors import InputError

SUPERSAMPLE = 3

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (240, 215, 50),
    "green": (50, 170, 70),
    "cyan": (60, 200, 220),
    "blue": (40, 80, 210),
    "purple": (140, 60, 180),
    "pink": (240, 130, 180),
    "white": (240, 240, 240),
    "grey": (128, 128, 128),
    "black": (25, 25, 25),
    "brown": (130, 80, 40),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = ("gradient", "stripes", "checkerboard", "texture")
LOOKS = ("neutral", "teal-orange", "bleach-bypass", "sepia", "grain")
MOVES = ("static", "pan-left", "pan-right", "tilt-up", "tilt-down", "dolly-in")

# Default speeds: pixels per frame at the rendered size for pans and tilts, zoom per frame for dolly-in.
# Fast enough that a 17-frame clip moves 48 px (pans), well above what a 64 x 112 sample jitters by.
MOVE_SPEED = {"pan-left": 3.0, "pan-right": 3.0, "tilt-up": 2.5, "tilt-down": 2.5, "dolly-in": 0.03, "static": 0.0}
CAPTION_MODES = ("always", "never", "static-both")
MOVE_PHRASES = {
    "static": "the camera is still",
    "pan-left": "the camera pans left",
    "pan-right": "the camera pans right",
    "tilt-up": "the camera tilts up",
    "tilt-down": "the camera tilts down",
    "dolly-in": "the camera dollies in",
}


@dataclass(frozen=True)
class Shape:
    kind: str  # one of SHAPES
    colour: str
    x: float  # centre, view units
    y: float
    size: float  # circumradius, view units
    angle: float  # radians


@dataclass(frozen=True)
class Scene:
    background: str  # one of BACKGROUNDS
    colours: tuple[str, str]
    angle: float  # direction of the gradient / stripes, radians
    period: float  # stripes / checkerboard / texture scale, view units
    shapes: tuple[Shape, ...]
    phase: tuple[float, ...] = ()  # texture phases (4 values), drawn with the scene

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def random_scene(rng: np.random.Generator, aspect: float = 112 / 64) -> Scene:
    """Two or three shapes inside the first view, on a background that covers the whole canvas."""
    names = list(COLOURS)
    background = str(rng.choice(BACKGROUNDS))
    first = str(rng.choice(names))
    second = str(rng.choice([c for c in names if c != first]))
    count = int(rng.integers(2, 4))
    shapes = []
    taken = {first, second}
    for i in range(count):
        colour = str(rng.choice([c for c in names if c not in taken] or names))
        taken.add(colour)
        # Spread the shapes over the width so they rarely hide each other.
        slot = (i + 0.5) / count - 0.5
        x = slot * aspect * 0.8 + rng.uniform(-0.08, 0.08)
        y = rng.uniform(-0.22, 0.22)
        shapes.append(Shape(str(rng.choice(SHAPES)), colour, float(x), float(y), float(rng.uniform(0.16, 0.26)),
                            float(rng.uniform(0, math.pi))))
    return Scene(background, (first, second), float(rng.uniform(0, math.pi)), float(rng.uniform(0.18, 0.35)),
                 tuple(shapes), tuple(float(p) for p in rng.uniform(0, 2 * math.pi, 4)))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def describe(scene: Scene) -> str:
    """The content caption: every shape with its colour, then the background."""
    shapes = _join([f"a {s.colour} {s.kind}" for s in scene.shapes])
    a, b = scene.colours
    background = {
        "gradient": f"a {a} and {b} gradient",
        "stripes": f"{a} and {b} stripes",
        "checkerboard": f"a {a} and {b} checkerboard",
        "texture": f"a mottled {a} and {b} texture",
    }[scene.background]
    return f"{shapes} on {background}"


def caption(scene: Scene, move: str, with_move: bool = True) -> str:
    """Content, then the move as a phrase ("..., the camera pans left"); ``with_move=False`` leaves it out."""
    text = describe(scene)
    return f"{text}, {MOVE_PHRASES[move]}" if with_move else text


def _rgb(name: str) -> np.ndarray:
    return np.asarray(COLOURS[name], dtype=np.float32) / 255.0


def _background(scene: Scene, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    a, b = _rgb(scene.colours[0]), _rgb(scene.colours[1])
    u = x * math.cos(scene.angle) + y * math.sin(scene.angle)
    if scene.background == "gradient":
        w = 0.5 + 0.5 * np.tanh(u / 0.8)
    elif scene.background == "stripes":
        w = (np.floor(u / scene.period) % 2).astype(np.float32)
    elif scene.background == "checkerboard":
        w = ((np.floor(x / scene.period) + np.floor(y / scene.period)) % 2).astype(np.float32)
    else:
        p = scene.phase or (0.0, 1.0, 2.0, 3.0)
        f = math.pi / scene.period  # twice the period of the stripes: the VAE keeps coarse texture better
        w = 0.5 + 0.25 * (np.sin(f * x + p[0]) * np.cos(0.7 * f * y + p[1])
                          + np.sin(0.6 * f * (x + y) + p[2]) * np.sin(1.3 * f * y - 0.4 * f * x + p[3]))
    return a + (b - a) * w[..., None]


def _inside(shape: Shape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    dx, dy = x - shape.x, y - shape.y
    c, s = math.cos(shape.angle), math.sin(shape.angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    r = shape.size
    if shape.kind == "circle":
        return u * u + v * v < r * r
    if shape.kind == "square":
        half = r / math.sqrt(2)
        return (np.abs(u) < half) & (np.abs(v) < half)
    # Equilateral triangle: inside all three edges at distance r/2 from the centre.
    inside = np.ones_like(u, dtype=bool)
    for k in range(3):
        t = shape.angle + k * 2 * math.pi / 3
        inside &= (dx * math.cos(t) + dy * math.sin(t)) < r / 2
    return inside


def render_view(scene: Scene, height: int, width: int, cx: float = 0.0, cy: float = 0.0,
                zoom: float = 1.0) -> np.ndarray:
    """One anti-aliased frame, float32 (H, W, 3) in [0, 1], of the window centred at (cx, cy) view pixels.

    ``zoom`` > 1 shows a smaller window (the camera moved in). Pixel offsets are at this size.
    """
    ss = SUPERSAMPLE
    offsets = (np.arange(ss, dtype=np.float32) + 0.5) / ss
    py = (np.arange(height, dtype=np.float32)[:, None] + offsets[None, :]).reshape(-1)
    px = (np.arange(width, dtype=np.float32)[:, None] + offsets[None, :]).reshape(-1)
    # Pixel centre of the view -> view units (1.0 = view height), through the camera window.
    y = ((py - height / 2) / zoom + cy) / height
    x = ((px - width / 2) / zoom + cx) / height
    yy, xx = np.meshgrid(y, x, indexing="ij")
    image = _background(scene, xx, yy)
    for shape in scene.shapes:
        image[_inside(shape, xx, yy)] = _rgb(shape.colour)
    return image.reshape(height, ss, width, ss, 3).mean(axis=(1, 3))


def camera_path(move: str, frames: int, speed: float | None = None) -> np.ndarray:
    """(frames, 3): window centre x, y (pixels, y down) and zoom per frame; frame 0 is the canonical view."""
    if move not in MOVES:
        raise InputError(f"unknown camera move {move!r}: choose from {', '.join(MOVES)}")
    v = MOVE_SPEED[move] if speed is None else speed
    t = np.arange(frames, dtype=np.float64)
    path = np.zeros((frames, 3))
    path[:, 2] = 1.0
    if move == "pan-left":
        path[:, 0] = -v * t
    elif move == "pan-right":
        path[:, 0] = v * t
    elif move == "tilt-up":
        path[:, 1] = -v * t
    elif move == "tilt-down":
        path[:, 1] = v * t
    elif move == "dolly-in":
        path[:, 2] = (1.0 + v) ** t
    return path


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.asarray([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def apply_look(frames: np.ndarray, look: str, seed: int = 0) -> np.ndarray:
    """Grade float frames (T, H, W, 3) in [0, 1]; returns a new array in [0, 1]."""
    if look not in LOOKS:
        raise InputError(f"unknown look {look!r}: choose from {', '.join(LOOKS)}")
    rgb = frames.astype(np.float32)
    if look == "neutral":
        return rgb.copy()
    luma = _luma(rgb)[..., None]
    if look == "teal-orange":
        # Split toning: shadows pulled to teal, highlights to orange, then a little more contrast.
        w = _smoothstep((luma - 0.15) / 0.7)
        tone = (1 - w) * np.asarray([0.05, 0.32, 0.36], np.float32) + w * np.asarray([1.0, 0.66, 0.34], np.float32)
        out = 0.5 * rgb + 0.5 * tone
        out = 0.5 + (out - 0.5) * 1.2
    elif look == "bleach-bypass":
        # The silver left in: most colour gone, hard contrast.
        out = 0.25 * rgb + 0.75 * luma
        out = _smoothstep(0.5 + (out - 0.5) * 1.4) * 0.92 + 0.04
    elif look == "sepia":
        matrix = np.asarray([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
        out = rgb @ matrix.T * 0.9 + 0.03
        _, height, width, _ = rgb.shape
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((yy + 0.5 - height / 2) / (height / 2)) ** 2 + ((xx + 0.5 - width / 2) / (width / 2)) ** 2
        out = out * (1.0 - 0.22 * r2)[None, ..., None]
    else:  # grain: neutral colours, film grain that changes every frame
        rng = np.random.default_rng([seed, 7])
        out = rgb + rng.normal(0.0, 0.06, rgb.shape[:-1] + (1,)).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_clip(scene: Scene, look: str = "neutral", move: str = "static", frames: int = 17, height: int = 64,
                width: int = 112, seed: int = 0, speed: float | None = None) -> np.ndarray:
    """uint8 (T, H, W, 3): ``scene`` seen through ``move``, graded with ``look`` (``seed`` drives the grain)."""
    if height % 16 or width % 16:
        raise InputError(f"height and width must be multiples of 16 (cinescene's rule), got {height}x{width}")
    path = camera_path(move, frames, speed)
    linear = np.stack([render_view(scene, height, width, *p) for p in path])
    return to_uint8(apply_look(linear, look, seed))


@dataclass(frozen=True)
class ToyDataset:
    """What a toy dataset holds; ``python -m cinescene toy-data`` takes these as flags."""

    looks: tuple[str, ...] = field(default=("neutral",), metadata={"help": "colour grades", "choices": LOOKS})
    moves: tuple[str, ...] = field(default=("static",), metadata={"help": "camera moves", "choices": MOVES})
    clips: int = field(default=8, metadata={"help": "mp4 clips (clip i: look i, move i // looks)"})
    stills: int = field(default=0, metadata={"help": "png stills, one scene each, content captions"})
    frames: int = field(default=17, metadata={"help": "frames per clip (16 fps)"})
    height: int = 64
    width: int = 112
    seed: int = 0
    move_captions: str = field(default="always", metadata={
        "choices": CAPTION_MODES, "help": "always name the move, never (content only), or static-both"})


# The crew's footage of the demo: a look and a move the toy base model never saw together with content-only
# captions (teal-orange, panning right), so the adapters trained on it have something to learn. The 32 stills
# are the grade's reference frames: with 8 (and 4 frames from each clip) the style adapter learnt the training
# scenes more than the grade and took 8 held-out stills further from the look (-0.07 of the gap); with 32 and 16,
# +0.35 (docs/toy.md).
DEMO = ToyDataset(looks=("teal-orange",), moves=("pan-right",), clips=8, stills=32, frames=17,
                  move_captions="never")


def make_dataset(out_dir: str | os.PathLike[str], spec: ToyDataset = ToyDataset(), prefix: str = "",
                 fps: int = 16) -> list[dict[str, Any]]:
    """Write captioned mp4 clips and png stills, and ``manifest.json`` describing every file, into a new folder.

    Clip ``i`` gets ``looks[i % len(looks)]`` and ``moves[(i // len(looks)) % len(moves)]``, so small
    sets still cover every combination. ``move_captions``: ``always`` names the move, ``never`` gives
    content-only captions, ``static-both`` names the move except on every other static clip.
    Stills are frame 0 of a fresh scene with the look, captioned with the content only.
    Returns the manifest entries.
    """
    looks, moves, clips, stills, frames = spec.looks, spec.moves, spec.clips, spec.stills, spec.frames
    seed, move_captions, size = spec.seed, spec.move_captions, (spec.height, spec.width)
    if not looks or not moves:
        raise InputError("a toy dataset needs at least one look and one move")
    if not 0 <= clips <= 10_000 or not 0 <= stills <= 10_000 or clips + stills == 0:
        raise InputError(f"toy dataset of {clips} clips and {stills} stills: give 1 to 10,000 of either")
    if frames < 1 or (frames - 1) % 4 or frames > 241:
        raise InputError(f"frames must be 4k+1 (5, 9, 17, ...) and at most 241, got {frames}")
    if move_captions not in CAPTION_MODES:
        raise InputError(f"move captions must be one of {', '.join(CAPTION_MODES)}")
    for look in looks:
        apply_look(np.zeros((1, 1, 1, 3), np.float32), look)  # an unknown look is refused by name, before any file
    for move in moves:
        camera_path(move, 1)
    final = Path(out_dir)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise InputError(f"{final} already exists and is not an empty folder: choose a new one")
    if not final.parent.is_dir():
        raise InputError(f"the folder {final.parent} does not exist")
    height, width = size
    if height % 16 or width % 16 or min(height, width) < 64:
        # The trainer's dataset check refuses sides under 64 pixels.
        raise InputError(f"toy footage needs sides that are multiples of 16 and at least 64, got {height}x{width}")
    # Written into a sibling folder and renamed when complete: a crash never leaves half a dataset.
    out = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    try:
        entries = []
        for i in range(clips):
            rng = np.random.default_rng([seed, 1, i])
            scene = random_scene(rng, width / height)
            look, move = looks[i % len(looks)], moves[(i // len(looks)) % len(moves)]
            named = move_captions == "always" or (move_captions == "static-both" and (move != "static" or i % 2 == 0))
            text = caption(scene, move, with_move=named)
            name = f"{prefix}clip{i:04d}"
            media.write_video(render_clip(scene, look, move, frames, height, width, seed=seed * 100_003 + i),
                              out / f"{name}.mp4", fps)
            atomic.write_text(out / f"{name}.txt", text + "\n")
            entries.append({"file": f"{name}.mp4", "kind": "clip", "look": look, "move": move, "caption": text,
                            "frames": frames, "height": height, "width": width, "scene": scene.to_dict()})
        for i in range(stills):
            from PIL import Image

            rng = np.random.default_rng([seed, 2, i])
            scene = random_scene(rng, width / height)
            look = looks[i % len(looks)]
            name = f"{prefix}still{i:04d}"
            with atomic.atomic_path(out / f"{name}.png") as tmp:
                Image.fromarray(render_clip(scene, look, "static", 1, height, width,
                                            seed=seed * 100_003 + 50_000 + i)[0]).save(tmp, format="PNG")
            text = describe(scene)
            atomic.write_text(out / f"{name}.txt", text + "\n")
            entries.append({"file": f"{name}.png", "kind": "still", "look": look, "move": "static", "caption": text,
                            "frames": 1, "height": height, "width": width, "scene": scene.to_dict()})
        atomic.write_json(out / "manifest.json", entries)
        atomic.replace_dir(out, final)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return entries


def scene_from_dict(data: dict[str, Any]) -> Scene:
    shapes = tuple(Shape(**s) for s in data["shapes"])
    return Scene(data["background"], tuple(data["colours"]), data["angle"], data["period"], shapes,
                 tuple(data.get("phase", ())))
