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
    assert all(s.frames == 9 and s.condition == "first-frame" for s in motion)
    style = latent_cache.samples_for(ds.train, "style", window=9, fps=16, style_frames_per_clip=4, area=AREA)
    assert len(style) == 4 + 4 + 1 and all(s.frames == 1 for s in style)
    # mixed, the default: half regraded, half blank, alternating
    assert [s.condition for s in style] == ["regraded", "blank"] * 4 + ["regraded"]
    assert {(s.height, s.width) for s in style} <= set(latent_cache.buckets(AREA))
    assert all(s.height % 16 == 0 and s.width % 16 == 0 for s in style)
    # Three regrades: each regraded frame three times, each copy its own grade; the blank ones once.
    three = latent_cache.samples_for(ds.train, "style", window=9, fps=16, style_frames_per_clip=4, area=AREA,
                                     style_regrades=3)
    assert [s.condition for s in three] == (["regraded"] * 3 + ["blank"]) * 4 + ["regraded"] * 3
    regraded = [s for s in three if s.condition == "regraded"]
    assert len({latent_cache.regrade_seed(s) for s in regraded}) == len(regraded) == 15
    # Two motion regrades: every window as it is, then twice graded whole, each copy its own grade, none the
    # grade of a style frame at the same start.
    graded = latent_cache.samples_for(ds.train, "motion", window=9, fps=16, style_frames_per_clip=4, area=AREA,
                                      motion_regrades=2)
    assert [(s.item.name, s.start, s.condition) for s in graded] == [
        (name, start, kind) for name in ("clip0.mp4", "clip1.mp4") for start in (0, 9)
        for kind in ("first-frame", "graded-window", "graded-window")]
    seeds = {latent_cache.regrade_seed(s) for s in graded if s.condition == "graded-window"}
    assert len(seeds) == 8 and not seeds & {latent_cache.regrade_seed(s) for s in regraded}


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


def test_style_frames_are_conditioned_on_a_regraded_copy(tmp_path, model):
    """Style frames carry a first frame (mask 1) that is not their own: the look must come from the adapter."""
    from PIL import Image

    root = make_dataset(tmp_path / "d", clips=0, stills=2)
    ds = dataset.scan(root, stage="style", window=9, val_fraction=0)
    cache = latent_cache.LatentCache(tmp_path / "cache", latent_cache.component_id(model.pipe, "tiny"), 16)
    entries = {}
    for kind in ("regraded", "blank"):
        samples = latent_cache.samples_for(ds.train, "style", window=9, fps=16, style_frames_per_clip=1, area=AREA,
                                           style_condition=kind)
        cache.build(model.pipe, samples)
        entries[kind] = [cache.load(s) for s in samples]
    for sample, regraded, blank in zip(samples, entries["regraded"], entries["blank"]):
        assert torch.all(regraded["condition"][:4] == 1) and torch.all(blank["condition"][:4] == 0)
        assert torch.equal(regraded["latents"], blank["latents"])  # the same target frame
        frame = latent_cache.decode_fitted(sample.item, 16, sample.height, sample.width)[0]
        own = latent_cache.i2v_condition(model.pipe, Image.fromarray(frame), 1, sample.height, sample.width)[0]
        assert (regraded["condition"][4:] - own[4:]).abs().max() > 1e-2  # not the frame's own latents
    # Seeded by the frame alone: encoding it again, for the same model named otherwise (a folder elsewhere, a
    # fresh clone whose files have new modification times), gives the same regrade, so the same adapter.
    other = latent_cache.component_id(model.pipe, "/elsewhere/tiny")
    cache2 = latent_cache.LatentCache(tmp_path / "cache2", other, 16)
    samples = latent_cache.samples_for(ds.train, "style", window=9, fps=16, style_frames_per_clip=1, area=AREA,
                                       style_condition="regraded")
    cache2.build(model.pipe, samples)
    assert all(torch.equal(cache2.load(s)["condition"], e["condition"]) for s, e in zip(samples, entries["regraded"]))


def test_graded_windows_are_graded_whole_and_conditioned_on_their_own_first_frame(tmp_path, model):
    """A motion window's graded copy: every frame under the grade, and the I2V condition its graded first frame."""
    import numpy as np
    from PIL import Image

    from cinescene.training.regrade import regrade

    root = make_dataset(tmp_path / "d", clips=1, stills=0, frames=12)
    ds = dataset.scan(root, stage="motion", window=9, val_fraction=0)
    samples = latent_cache.samples_for(ds.train, "motion", window=9, fps=16, style_frames_per_clip=1, area=AREA,
                                       motion_regrades=1)
    cache = latent_cache.LatentCache(tmp_path / "cache", latent_cache.component_id(model.pipe, "tiny"), 16)
    cache.build(model.pipe, samples)
    plain, graded = (cache.load(s) for s in samples)
    for entry in (plain, graded):
        assert torch.all(entry["condition"][:4, 0] == 1) and torch.all(entry["condition"][:4, 1:] == 0)
        # The causal VAE's first latent frame is the first frame's alone: the condition's is the window's.
        assert torch.allclose(entry["condition"][4:, 0], entry["latents"][:, 0], atol=1e-4)
    # The latents are those of every frame under the sample's grade (not of the first frame only: the causal
    # VAE would carry that into every latent frame too).
    sample = samples[1]
    frames = latent_cache.decode_fitted(sample.item, 16, sample.height, sample.width)[:9]
    whole = regrade(frames, np.random.default_rng(latent_cache.regrade_seed(sample)))
    video = model.pipe.video_processor.preprocess_video([Image.fromarray(f) for f in whole], height=sample.height,
                                                        width=sample.width)
    with torch.no_grad():
        expected = latent_cache.normalize(model.pipe, model.pipe.vae.encode(video).latent_dist.mode())[0]
    assert torch.allclose(graded["latents"], expected, atol=1e-5)
    assert not torch.allclose(plain["latents"], expected, atol=1e-2)
    assert not torch.equal(graded["image_embeds"], plain["image_embeds"])
    assert torch.equal(plain["prompt_embeds"], graded["prompt_embeds"])  # the caption is the window's


def test_encodings_of_a_retrained_model_in_the_same_folder_are_not_reused(tmp_path, model):
    """Same folder, same config, new weights (the toy model after its script runs again): a new cache key."""
    import os
    from types import SimpleNamespace

    from diffusers import AutoencoderKLWan

    def identity() -> dict:
        vae = AutoencoderKLWan.from_pretrained(str(tmp_path / "vae"))
        pipe = SimpleNamespace(vae=vae, text_encoder=model.pipe.text_encoder, image_encoder=model.pipe.image_encoder)
        return latent_cache.component_id(pipe, str(tmp_path))

    model.pipe.vae.save_pretrained(tmp_path / "vae")
    first = identity()
    assert identity() == first  # nothing changed, nothing re-encoded
    with torch.no_grad():
        next(model.pipe.vae.parameters()).add_(1.0)
    model.pipe.vae.save_pretrained(tmp_path / "vae")
    weights = tmp_path / "vae" / "diffusion_pytorch_model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))  # coarse clocks
    second = identity()
    assert second["vae"] != first["vae"] and second["text_encoder"] == first["text_encoder"]


def test_cache_keys_are_the_same_in_every_process():
    """A new process (the next training run) must find the entries the last one wrote."""
    import subprocess
    import sys

    from conftest import ROOT, subprocess_env

    code = ("from cinescene import loading; from cinescene.settings import ModelSpec; "
            "from cinescene.training.latent_cache import component_id; "
            "print(component_id(loading.load_model(ModelSpec(model='tiny')).pipe, 'tiny'))")
    seen = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(PYTHONHASHSEED=seed),
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            for seed in ("1", "2")}
    assert len(seen) == 1, seen


def test_wan22_entries_carry_their_own_conditioning(tmp_path):
    """A14B: the mask + first-frame channels and no CLIP embedding; TI2V: first-frame latents and their mask."""
    from cinescene.settings import TINY_TI2V, TINY_WAN22

    root = make_dataset(tmp_path / "d", clips=1, stills=1, frames=12)
    ds = dataset.scan(root, stage="both", window=9, val_fraction=0)
    for name in (TINY_WAN22, TINY_TI2V):
        model = loading.load_model(ModelSpec(model=name))
        multiple = model.size_multiple
        motion = latent_cache.samples_for(ds.train, "motion", window=9, fps=16, style_frames_per_clip=1, area=AREA,
                                          multiple=multiple)
        style = latent_cache.samples_for(ds.train, "style", window=9, fps=16, style_frames_per_clip=1, area=AREA,
                                         style_condition="blank", multiple=multiple)
        assert all(s.height % multiple == 0 and s.width % multiple == 0 for s in motion + style)
        cache = latent_cache.LatentCache(tmp_path / name, latent_cache.component_id(model.pipe, name), 16)
        cache.build(model.pipe, motion + style)
        clip, frame = cache.load(motion[0]), cache.load(style[0])
        assert "image_embeds" not in clip  # Wan2.2 has no image encoder
        s = model.pipe.vae_scale_factor_spatial
        h, w = motion[0].height // s, motion[0].width // s
        if name == TINY_WAN22:
            assert clip["condition"].shape == (20, 3, h, w) and "first_frame_mask" not in clip
            continue
        assert clip["latents"].shape == (48, 3, h, w) and clip["condition"].shape == (48, 1, h, w)
        assert torch.all(clip["first_frame_mask"][:, 0] == 0) and torch.all(clip["first_frame_mask"][:, 1:] == 1)
        # The first frame written in is the clip's own first latent frame (the VAE is causal in time).
        assert torch.allclose(clip["condition"][:, 0], clip["latents"][:, 0], atol=1e-4)
        assert torch.all(frame["first_frame_mask"] == 1) and torch.all(frame["condition"] == 0)  # blank: no frame
        batch = next(iter(torch.utils.data.DataLoader(latent_cache.CachedSamples(cache, motion[:1]), batch_size=1)))
        assert set(batch) == {"latents", "condition", "prompt_embeds", "first_frame_mask"}
