from __future__ import annotations

import pytest
import torch

from cinescene import loading
from cinescene.settings import ModelSpec
from cinescene.training import dataset, latent_cache

from footage import make_dataset, moving_clip

AREA = 48 * 64


@pytest.fixture
def model():
    return loading.load_model(ModelSpec(model="tiny"))


@pytest.fixture
def counted_vae(model, monkeypatch):
    """Count VAE encodes: the expensive call a cache exists to avoid."""
    calls = []
    real = model.pipe.vae.encode
    monkeypatch.setattr(model.pipe.vae, "encode", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    return calls


def test_plan_windows_and_frames(tmp_path):
    ds = dataset.scan(make_dataset(tmp_path / "d", clips=2, stills=1, frames=24), stage="both", window=9,
                   val_fraction=0)
    motion = latent_cache.samples_for(ds.train, "motion", window=9, fps=16, style_frames_per_clip=4, area=AREA)
    assert sorted((s.item.name, s.start) for s in motion) == [("clip0.mp4", 0), ("clip0.mp4", 9),
                                                              ("clip1.mp4", 0), ("clip1.mp4", 9)]
    assert all(s.frames == 9 and s.first_frame_conditioned for s in motion)
    style = latent_cache.samples_for(ds.train, "style", window=9, fps=16, style_frames_per_clip=4, area=AREA)
    assert len(style) == 4 + 4 + 1 and all(s.frames == 1 and not s.first_frame_conditioned for s in style)
    assert {(s.height, s.width) for s in style} <= set(latent_cache.buckets(AREA))
    assert all(s.height % 16 == 0 and s.width % 16 == 0 for s in style)


def test_cache_is_reused_and_invalidated_only_where_things_changed(tmp_path, model, counted_vae):
    root = make_dataset(tmp_path / "d", clips=2, stills=0, frames=12)  # one 9-frame window each

    def build():
        ds = dataset.scan(root, stage="motion", window=9, val_fraction=0)
        samples = latent_cache.samples_for(ds.train, "motion", window=9, fps=16, style_frames_per_clip=1, area=AREA)
        cache = latent_cache.LatentCache(tmp_path / "cache", latent_cache.component_id(model.pipe, "tiny"), 16)
        counted_vae.clear()
        return cache.build(model.pipe, samples), cache, samples

    first, cache, samples = build()
    assert first["latents_encoded"] == 2 and first["text_encoded"] == 2 and counted_vae
    second, _, _ = build()
    assert second == {"latents_cached": 2, "latents_encoded": 0, "text_cached": 2, "text_encoded": 0}
    assert not counted_vae  # no VAE call at all on the second run
    (root / "clip1.txt").write_text("a new caption")
    third, _, _ = build()
    assert (third["latents_encoded"], third["text_encoded"]) == (0, 1)
    from cinescene import media

    media.write_video(moving_clip(12, seed=7), root / "clip0.mp4")
    fourth, _, _ = build()
    assert (fourth["latents_encoded"], fourth["text_encoded"]) == (1, 0)
    loaded = cache.load(samples[0])
    sample = samples[0]
    assert loaded["latents"].shape == (16, 3, sample.height // 8, sample.width // 8)
    assert loaded["condition"].shape == (20, 3, sample.height // 8, sample.width // 8)
    assert loaded["prompt_embeds"].shape == (512, 32)


def test_i2v_condition_is_the_pipelines_own(model):
    from PIL import Image

    frame = Image.fromarray(moving_clip(1)[0]).resize((64, 48))
    condition = latent_cache.i2v_condition(model.pipe, frame, 9, 48, 64)
    assert condition.shape == (1, 20, 3, 6, 8)
    mask = condition[:, :4]
    assert torch.all(mask[:, :, 0] == 1) and torch.all(mask[:, :, 1:] == 0)  # only the first frame is given
    blank = latent_cache.blank_condition(model.pipe, 48, 64)
    assert blank.shape == (1, 20, 1, 6, 8) and torch.all(blank[:, :4] == 0)


def test_text_embeddings_round_trip_with_padding(tmp_path, model):
    cache = latent_cache.LatentCache(tmp_path, latent_cache.component_id(model.pipe, "tiny"), 16)
    cache._encode_text(model.pipe, "a lighthouse")
    direct, _ = model.pipe.encode_prompt("a lighthouse", do_classifier_free_guidance=False, max_sequence_length=512,
                                         device="cpu")
    assert torch.equal(cache.load_text("a lighthouse"), direct[0])
