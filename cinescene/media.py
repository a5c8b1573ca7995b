"""Reading and writing stills and videos, and fitting them to Wan's size rules."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import InputError
from .settings import MAX_SIDE, SIZE_MULTIPLE

# A 16k x 16k still is 256 MP; anything above this is a decompression bomb or a
# mistake, never a frame a video model can use.
MAX_IMAGE_PIXELS = 64_000_000
MIN_IMAGE_SIDE = 16


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open a still as RGB, upright (EXIF orientation applied), after checking it is safe to decode."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"image not found: {path}")
    if not path.is_file():
        raise InputError(f"image path is not a file: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"image is not readable (permission denied): {path}")
    try:
        with warnings.catch_warnings():
            # PIL only *warns* between MAX_IMAGE_PIXELS and twice that; treat it as an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise InputError(
                        f"image {path.name} is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
                        f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP limit (decompression-bomb guard)"
                    )
                img.load()
                image = ImageOps.exif_transpose(img).convert("RGB")
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # PIL refuses the worst ones itself, from the header, before cinescene sees the size.
        raise InputError(f"image {path.name} is over the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit "
                         "(decompression-bomb guard)") from err
    except UnidentifiedImageError as err:
        raise InputError(f"not an image (or an unsupported format): {path}") from err
    except (OSError, SyntaxError, ValueError) as err:
        # PIL raises OSError/SyntaxError for truncated or corrupt data.
        raise InputError(f"image {path.name} is damaged or truncated: {err}") from err
    if min(image.size) < MIN_IMAGE_SIDE:
        raise InputError(
            f"image {path.name} is {image.width}x{image.height}; both sides must be at least {MIN_IMAGE_SIDE}"
        )
    return image


def size_for_area(
    aspect_hw: float, area: int, multiple: int = SIZE_MULTIPLE, max_side: int = MAX_SIDE
) -> tuple[int, int]:
    """(height, width) near ``area`` pixels with the given height/width ratio, both multiples of ``multiple``.

    The same rule as the diffusers Wan I2V example (round to the area, then floor
    to the multiple), plus a cap on the longer side for extreme aspect ratios.
    """
    height = math.sqrt(area * aspect_hw)
    width = math.sqrt(area / aspect_hw)
    scale = min(1.0, max_side / max(height, width))
    height_i = max(multiple, int(round(height * scale)) // multiple * multiple)
    width_i = max(multiple, int(round(width * scale)) // multiple * multiple)
    return height_i, width_i


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover ``width`` x ``height`` and crop the centre: no stretching, no borders."""
    if image.size == (width, height):
        return image
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def fit_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Cover-resize and centre-crop every frame to ``height`` x ``width`` (what fit_image does to a still)."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(fit_image(Image.fromarray(f), width, height)) for f in frames])


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] to uint8, rounding rather than truncating."""
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_video(frames: np.ndarray, path: str | os.PathLike[str], fps: int = 16) -> Path:
    """Write (T, H, W, 3) uint8 frames as H.264/yuv420p mp4, atomically.

    yuv420p and ``+faststart`` are what browsers need to play the file inline
    while it downloads; H.264 needs even sizes, which Wan's multiples of 16 give.
    """
    import imageio.v2 as iio

    frames = to_uint8(np.asarray(frames))
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = iio.get_writer(
            tmp,
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            quality=8,
            macro_block_size=2,
            ffmpeg_log_level="error",
            ffmpeg_params=["-movflags", "+faststart"],
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
    return path


@dataclass
class Video:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return int(self.frames.shape[1]), int(self.frames.shape[2])


@dataclass(frozen=True)
class VideoHeader:
    """What a video's container says about it, and (when counted) how many frames really decode."""

    width: int
    height: int
    fps: float
    duration: float  # seconds, as the header promises
    decoded_frames: int | None = None  # counted by a full decode (probe_video(count=True))
    decoded_seconds: float | None = None


def _open(path: Path, fps: float | None = None):  # type: ignore[no-untyped-def]
    """imageio's ffmpeg reader (ffmpeg resamples to ``fps`` when given), or InputError."""
    import imageio.v2 as iio

    if not path.is_file():
        raise InputError(f"video not found: {path}")
    try:
        return iio.get_reader(path, format="FFMPEG", **({"fps": fps} if fps else {}))
    except (OSError, RuntimeError, ValueError) as err:
        raise InputError(f"not a readable video: {path.name} (ffmpeg could not read its header)") from err


def probe_video(path: str | os.PathLike[str], count: bool = False) -> VideoHeader:
    """The header of a video; with ``count``, also decode every frame (to nowhere) to know the file is whole."""
    import imageio_ffmpeg

    path = Path(path)
    reader = _open(path)
    try:
        meta = reader.get_meta_data()
    finally:
        reader.close()
    width, height = meta.get("size") or (0, 0)
    header = VideoHeader(int(width), int(height), float(meta.get("fps") or 0), float(meta.get("duration") or 0))
    if not count:
        return header
    try:
        frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError) as err:
        raise InputError(f"video {path.name} is damaged: ffmpeg could not decode it") from err
    return dataclasses.replace(header, decoded_frames=int(frames), decoded_seconds=float(seconds))


def read_video(path: str | os.PathLike[str], max_frames: int | None = None, fps: float | None = None) -> Video:
    """Decode a video to uint8 RGB frames, refusing unreadable or truncated files with a clear reason.

    With ``fps``, ffmpeg resamples the clip to that rate first (what training windows are cut from).
    """
    path = Path(path)
    reader = _open(path, fps)
    try:
        meta = reader.get_meta_data()
        rate = float(fps or meta.get("fps") or 0)
        frames = []
        try:
            for frame in reader:
                frames.append(frame)
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except (OSError, RuntimeError, ValueError) as err:
            raise InputError(f"video {path.name} is damaged: decoding stopped after {len(frames)} frames") from err
    finally:
        reader.close()
    if not frames:
        raise InputError(f"video {path.name} holds no decodable frames")
    if rate <= 0:
        raise InputError(f"video {path.name} has no frame rate in its header")
    duration = float(meta.get("duration") or 0)
    expected = int(round(duration * rate))
    # The container promises duration x fps frames; far fewer decoding means
    # the file was cut off (an interrupted copy or upload).
    if max_frames is None and expected and len(frames) < 0.9 * expected - 1:
        raise InputError(
            f"video {path.name} is truncated: its header promises about {expected} frames, only {len(frames)} decode"
        )
    return Video(np.stack(frames), rate)


LABEL_HEIGHT = 12  # pixels of caption above each cell of a tiled grid


def tile(layout: list[list[np.ndarray]], labels: list[list[str]], label_height: int = LABEL_HEIGHT) -> np.ndarray:
    """(T, H, W, 3) videos in rows and columns -> one (T, rows*(H+label), cols*W, 3) video, each cell captioned.

    Written here because none of cinescene's libraries tiles videos with captions; PIL draws the captions.
    """
    frames, height, width, _ = layout[0][0].shape
    rows, cols = len(layout), len(layout[0])
    cell_h = height + label_height
    out = np.full((frames, rows * cell_h, cols * width, 3), 255, np.uint8)
    caption = Image.new("RGB", (cols * width, rows * cell_h), "white")
    draw = ImageDraw.Draw(caption)
    for r in range(rows):
        for c in range(cols):
            draw.text((c * width + 2, r * cell_h), labels[r][c], fill="black")
    out[:] = np.asarray(caption)
    for r in range(rows):
        for c in range(cols):
            out[:, r * cell_h + label_height:(r + 1) * cell_h, c * width:(c + 1) * width] = layout[r][c]
    # Even sides: H.264 in yuv420p needs them.
    return out[:, :out.shape[1] // 2 * 2, :out.shape[2] // 2 * 2]
