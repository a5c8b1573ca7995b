from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from cinescene import media, sampler
from cinescene.errors import InputError
from cinescene.settings import SampleSettings

from conftest import files_under


@pytest.fixture(scope="module")
def image(still):
    return media.load_image(still)


def test_shapes_and_frame_count(tiny_model, image, small_settings):
    result = sampler.sample(tiny_model, image, dataclasses.replace(small_settings, frames=9))
    assert result.frames.shape == (9, 32, 48, 3) and result.frames.dtype == np.uint8


def test_same_seed_same_frames_other_seed_other_frames(tiny_model, image, small_settings):
    a = sampler.sample(tiny_model, image, small_settings).frames
    b = sampler.sample(tiny_model, image, small_settings).frames
    c = sampler.sample(tiny_model, image, dataclasses.replace(small_settings, seed=1)).frames
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_seed_reaches_the_pipeline_unchanged(tiny_model, image, small_settings):
    """cinescene's frames for seed S are the pipeline's own with torch.Generator("cpu").manual_seed(S).

    Every other test compares cinescene with itself, so an off-by-one seed would pass them all.
    """
    settings = dataclasses.replace(small_settings, seed=1234, shift=3.0)
    ours = sampler.sample(tiny_model, image, settings).frames
    with tiny_model.lock:
        # The state sample() left (shift 3, every adapter slot at 0) is what this call should run with.
        assert tiny_model.pipe.scheduler.config.flow_shift == 3.0
        direct = tiny_model.pipe(
            image=media.fit_image(image, settings.width, settings.height), prompt=settings.prompt,
            negative_prompt=settings.negative_prompt, height=settings.height, width=settings.width,
            num_frames=settings.frames, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
            generator=torch.Generator("cpu").manual_seed(1234), output_type="np",
        ).frames[0]
    assert np.array_equal(ours, media.to_uint8(direct))


def test_progress_is_reported_once_per_step(tiny_model, image, small_settings):
    seen = []
    sampler.sample(tiny_model, image, dataclasses.replace(small_settings, steps=4),
                   on_event=lambda e: seen.append((e["done"], e["total"], e["timestep"])))
    assert [(i, n) for i, n, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    timesteps = [t for *_, t in seen]
    assert timesteps == sorted(timesteps, reverse=True)


def test_shift_reaches_the_scheduler_and_changes_the_result(tiny_model, image, small_settings):
    a = sampler.sample(tiny_model, image, dataclasses.replace(small_settings, shift=3.0)).frames
    assert tiny_model.pipe.scheduler.config.flow_shift == 3.0
    b = sampler.sample(tiny_model, image, dataclasses.replace(small_settings, shift=8.0)).frames
    assert tiny_model.pipe.scheduler.config.flow_shift == 8.0
    assert not np.array_equal(a, b)


def test_size_follows_image_aspect_at_preset_area():
    s = sampler.resolve_settings(SampleSettings(prompt="x", preset="480P"), (1664, 960))
    assert (s.height, s.width, s.shift) == (480, 832, 3.0)
    s = sampler.resolve_settings(SampleSettings(prompt="x", preset="720P"), (1920, 1080))
    assert (s.height, s.width, s.shift) == (720, 1280, 5.0)
    s = sampler.resolve_settings(SampleSettings(prompt="x", preset="480P"), (1080, 1920))  # portrait
    assert (s.height, s.width) == (832, 464)
    s = sampler.resolve_settings(SampleSettings(prompt="x", width=640), (1920, 1080))  # one side given
    assert (s.height, s.width) == (352, 640)


def test_official_defaults():
    s = SampleSettings(prompt="x")
    assert (s.steps, s.frames, s.guidance, s.fps, s.preset) == (40, 81, 5.0, 16, "480P")


def test_sample_to_file_writes_video_and_record(tiny_model, image, small_settings, tmp_path):
    result = sampler.sample_to_file(tiny_model, image, small_settings, tmp_path / "shot.mp4")
    video = media.read_video(tmp_path / "shot.mp4")
    assert video.num_frames == 5 and video.size == (32, 48) and video.fps == 16
    record = json.loads((tmp_path / "shot.json").read_text())
    assert record == result.record
    assert record["model"]["id"] == "tiny"
    assert record["settings"] == {**small_settings.to_dict(), "shift": 3.0}
    assert record["adapters"] == []
    assert record["output"] == {"video": "shot.mp4", "frames": 5, "height": 32, "width": 48, "fps": 16}
    assert {"torch", "diffusers", "peft", "python"} <= set(record["versions"])
    assert record["elapsed_seconds"]["total"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.json", "shot.mp4"]


BAD_SETTINGS = [
    (dict(frames=8), "4k\\+1"),
    (dict(frames=0), "4k\\+1"),
    (dict(frames=245), "at most 241"),
    (dict(steps=0), "steps"),
    (dict(height=100), "multiple of 16"),
    (dict(width=1296), "at most 1280"),
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt="   "), "prompt is empty"),
    (dict(prompt="x" * 5000), "limit"),
    (dict(guidance=-1.0), "guidance"),
    (dict(seed=-3), "seed"),
    (dict(preset="4K"), "preset"),
]


@pytest.mark.parametrize("change, match", BAD_SETTINGS, ids=[str(c) for c, _ in BAD_SETTINGS])
def test_bad_settings_fail_before_any_work(tiny_model, image, small_settings, tmp_path, change, match):
    bad = dataclasses.replace(small_settings, **change)
    with pytest.raises(InputError, match=match):
        sampler.sample_to_file(tiny_model, image, bad, tmp_path / "out.mp4")
    assert files_under(tmp_path) == {}


def test_output_folder_must_exist(tiny_model, image, small_settings, tmp_path):
    with pytest.raises(InputError, match="output folder does not exist"):
        sampler.sample_to_file(tiny_model, image, small_settings, tmp_path / "missing" / "out.mp4")
    with pytest.raises(InputError, match=r"\.mp4"):
        sampler.sample_to_file(tiny_model, image, small_settings, tmp_path / "out.gif")
    assert files_under(tmp_path) == {}
