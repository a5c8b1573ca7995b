from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cinescene import media
from cinescene.errors import InputError


def test_load_image_converts_to_rgb_and_applies_exif_rotation(tmp_path):
    img = Image.new("RGBA", (40, 20), (255, 0, 0, 128))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW": phones write stills like this
    path = tmp_path / "phone.jpg"
    img.convert("RGB").save(path, exif=exif)
    loaded = media.load_image(path)
    assert loaded.mode == "RGB" and loaded.size == (20, 40)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b"definitely not a picture"), "not an image"),
        (lambda p: p.write_bytes(_png_bytes()[:120]), "damaged or truncated"),
        (lambda p: Image.new("RGB", (8, 8)).save(p, format="PNG"), "at least 16"),
    ],
    ids=["missing", "not-an-image", "truncated", "too-small"],
)
def test_bad_images(tmp_path, make, match):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(InputError, match=match):
        media.load_image(path)


def test_unreadable_image(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    Image.new("RGB", (32, 32)).save(path)
    monkeypatch.setattr(media.os, "access", lambda p, mode: False)
    with pytest.raises(InputError, match="not readable"):
        media.load_image(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(InputError, match="decompression-bomb"):
        media.load_image(path)


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "aspect, area, expected",
    [(480 / 832, 480 * 832, (480, 832)), (720 / 1280, 720 * 1280, (720, 1280)), (1.0, 480 * 832, (624, 624))],
)
def test_size_for_area_matches_the_official_sizes(aspect, area, expected):
    assert media.size_for_area(aspect, area) == expected


def test_size_for_area_caps_extreme_aspect():
    h, w = media.size_for_area(0.2, 720 * 1280)
    assert w <= 1280 and h % 16 == 0 and w % 16 == 0


def test_fit_image_crops_without_stretching():
    img = Image.new("RGB", (200, 100))
    img.paste((255, 255, 255), (50, 0, 150, 100))  # white centre square
    fitted = media.fit_image(img, 64, 64)
    assert fitted.size == (64, 64)
    assert np.asarray(fitted).mean() > 240  # only the centre square survives the crop


def test_video_round_trip(tmp_path):
    frames = (np.random.default_rng(0).random((9, 32, 48, 3)) * 255).astype(np.uint8)
    path = media.write_video(frames, tmp_path / "v.mp4", fps=16)
    video = media.read_video(path)
    assert video.num_frames == 9 and video.size == (32, 48) and video.fps == 16
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no temp file left


def test_written_video_is_browser_playable_h264_yuv420p(tmp_path):
    import imageio.v2 as iio

    path = media.write_video(np.zeros((5, 32, 32, 3), np.uint8), tmp_path / "v.mp4")
    meta = iio.get_reader(path, format="FFMPEG").get_meta_data()
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")


def test_truncated_and_broken_videos(tmp_path):
    path = media.write_video((np.random.default_rng(1).random((33, 64, 64, 3)) * 255).astype(np.uint8),
                             tmp_path / "v.mp4")
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="truncated"):
        media.read_video(tmp_path / "cut.mp4")
    with pytest.raises(InputError, match="not a readable video"):
        media.read_video(tmp_path / "junk.mp4")


def test_failed_video_write_keeps_the_old_file(tmp_path, monkeypatch):
    import imageio.v2 as iio

    old = media.write_video(np.zeros((5, 32, 32, 3), np.uint8), tmp_path / "v.mp4")
    before = old.read_bytes()
    real_get_writer = iio.get_writer

    def failing_writer(*args, **kwargs):
        writer = real_get_writer(*args, **kwargs)
        real_append = writer.append_data
        calls = []

        def append(frame):
            calls.append(1)
            if len(calls) == 3:
                raise OSError("disk full")
            real_append(frame)

        writer.append_data = append
        return writer

    monkeypatch.setattr(iio, "get_writer", failing_writer)
    with pytest.raises(OSError, match="disk full"):
        media.write_video(np.full((9, 32, 32, 3), 255, np.uint8), tmp_path / "v.mp4")
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    assert old.read_bytes() == before
