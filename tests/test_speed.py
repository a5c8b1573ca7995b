"""Speed and memory options on the tiny model: each runs, and each does what it claims."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cinescene import loading, media, sampler
from cinescene.adapters import AdapterLibrary
from cinescene.errors import InputError
from cinescene.settings import AdapterChoice, ModelSpec, SampleSettings

import lora_fixtures as lf

SETTINGS = SampleSettings(prompt="a lighthouse", steps=6, frames=5, height=32, width=48, preset="preview")


@pytest.fixture(scope="module")
def image(still):
    return media.load_image(still)


@pytest.mark.parametrize("changes", [
    dict(memory="model-offload"), dict(memory="group-offload"), dict(memory="group-offload-leaf"),
    dict(memory="auto"), dict(fp8=True), dict(vae_tiling=True), dict(fp8=True, memory="group-offload"),
    dict(attention="native"),
], ids=str)
def test_memory_and_engine_options_run(image, changes):
    model = loading.load_model(ModelSpec(model="tiny", **changes))
    frames = sampler.sample(model, image, SETTINGS).frames
    assert frames.shape == (5, 32, 48, 3)
    if changes.get("fp8"):
        assert model.pipe.transformer.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    if changes.get("memory") == "auto":
        assert any("memory auto" in note for note in model.notes)


def test_missing_or_unknown_attention_backends_are_named():
    with pytest.raises(InputError, match="'flash' is not available here"):
        loading.load_model(ModelSpec(model="tiny", attention="flash"))
    with pytest.raises(InputError, match="unknown attention backend"):
        loading.load_model(ModelSpec(model="tiny", attention="warp-drive"))


def count_block_computations(model):
    """Calls into the last block's attention: skipped by every cache when it skips that block."""
    calls = []
    model.pipe.transformer.blocks[-1].attn1.to_q.register_forward_hook(lambda *a: calls.append(1))
    return calls


@pytest.fixture(scope="module")
def counted():
    model = loading.load_model(ModelSpec(model="tiny"))
    return model, count_block_computations(model)


def run(counted, image, **changes):
    model, calls = counted
    calls.clear()
    result = sampler.sample(model, image, dataclasses.replace(SETTINGS, **changes))
    return len(calls), result


def test_cfg_is_skipped_at_guidance_one(counted, image):
    assert run(counted, image)[0] == 2 * SETTINGS.steps  # conditional and unconditional pass per step
    calls, result = run(counted, image, guidance=1.0)
    assert calls == SETTINGS.steps and result.speed["cfg"] is False


def test_first_block_cache_skips_the_rest_when_nothing_changes(counted, image):
    assert run(counted, image, cache="first-block", cache_threshold=1e-9)[0] == 2 * SETTINGS.steps
    # A threshold no change can reach: after the first step every step reuses the cached blocks.
    assert run(counted, image, cache="first-block", cache_threshold=9.0)[0] == 2


@pytest.mark.parametrize("interval", [2, 3])
def test_taylorseer_computes_on_its_schedule(counted, image, interval):
    steps = 12
    # diffusers' TaylorSeer: full computation for the first 3 steps, then every `interval` steps.
    expected = sum(1 for s in range(steps) if s < 3 or (s - 4) % interval == 0)
    calls, result = run(counted, image, steps=steps, cache="taylorseer", cache_interval=interval)
    assert calls == 2 * expected and result.frames.shape == (5, 32, 48, 3)


def test_magcache_calibrates_then_skips(counted, image, tmp_path):
    model, _ = counted
    out = tmp_path / "cal.mp4"
    result = sampler.sample_to_file(model, image, dataclasses.replace(SETTINGS, steps=12, cache="magcache-calibrate"),
                                    out)
    ratios_file = out.with_suffix(".magcache.json")
    assert ratios_file.is_file() and len(result.speed["cache"]["mag_ratios"]) == 12
    calls, _ = run(counted, image, steps=12, cache="magcache", mag_ratios=str(ratios_file), cache_threshold=0.5)
    assert 2 * 2 <= calls < 2 * 12  # the first 20% always compute; after that, steps are skipped
    with pytest.raises(InputError, match="calibrate"):
        run(counted, image, cache="magcache")


def test_speed_adapter_switches_to_few_step_sampling(tmp_path, image):
    tr = loading.build_tiny_pipeline().transformer
    library = AdapterLibrary(tmp_path / "loras")
    library.import_file(lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.ALL, rank=8, seed=9)),
                                tmp_path / "lightx2v.safetensors"), "speed", name="lightx2v", base_model="tiny",
                        transformer=tr)
    assert library.get("lightx2v").hotswap  # every block layer: exactly the speed slot
    model = loading.load_model(ModelSpec(model="tiny"))
    calls = count_block_computations(model)
    result = sampler.sample(model, image, dataclasses.replace(SETTINGS, adapters=(AdapterChoice("speed", "lightx2v"),)),
                            library=library)
    assert (result.settings.steps, result.settings.guidance, result.settings.shift) == (4, 1.0, 5.0)
    assert len(calls) == 4  # 4 steps, no CFG pass
    assert "speed adapter lightx2v: 4 steps" in result.speed["notes"][0]
    assert "speed" in model.slots.ready


def test_compile_and_five_swaps_never_recompile(tmp_path, image):
    """Dynamo's guards decide recompilation whatever the backend; 'eager' skips inductor's codegen time."""
    from torch._dynamo.utils import counters

    tr = loading.build_tiny_pipeline().transformer
    library = AdapterLibrary(tmp_path / "loras")
    for i in range(3):
        library.import_file(lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE, rank=4 + 4 * i, seed=i)),
                                    tmp_path / f"s{i}.safetensors"), "style", name=f"s{i}", base_model="tiny",
                            transformer=tr)
    torch._dynamo.reset()
    model = loading.load_model(ModelSpec(model="tiny", compile=True, compile_backend="eager"))
    settings = dataclasses.replace(SETTINGS, steps=2)
    first = sampler.sample(model, image, dataclasses.replace(settings, adapters=(AdapterChoice("style", "s0"),)),
                           library=library).frames
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    outputs = [first]
    for name, strength in [("s1", 1.0), ("s2", 0.5), ("s0", 1.5), ("s1", 0.0), ("s2", 1.0)]:
        choice = AdapterChoice("style", name, strength)
        outputs.append(sampler.sample(model, image, dataclasses.replace(settings, adapters=(choice,)),
                                      library=library).frames)
    assert counters["stats"]["unique_graphs"] == graphs  # 0 recompilations across 5 swaps
    assert all(not (a == b).all() for a, b in zip(outputs, outputs[1:]))


def published_speed_library(tmp_path, *seeds):
    """Speed LoRAs in lightx2v's published layout (rank 64, diff_b biases, zero norm deltas), imported."""
    tr = loading.build_tiny_pipeline().transformer
    library = AdapterLibrary(tmp_path / "loras")
    paths = {}
    for seed in seeds:
        sd, _ = lf.published_speed_lora(tr, seed=seed)
        paths[f"lightx2v-{seed}"] = path = lf.save(sd, tmp_path / f"lightx2v_rank64_{seed}.safetensors")
        info = library.import_file(path, "speed", name=f"lightx2v-{seed}", base_model="tiny", transformer=tr)
        assert info.hotswap and info.rank == 64, info.hotswap_note
    return library, paths, tr


def test_published_speed_lora_hot_swaps_and_samples_like_plain_diffusers(tmp_path, image):
    library, paths, _ = published_speed_library(tmp_path, 3)
    model = loading.load_model(ModelSpec(model="tiny"))
    ours = sampler.sample(model, image, dataclasses.replace(SETTINGS, adapters=(AdapterChoice("speed", "lightx2v-3"),)),
                          library=library)
    assert model.slots.loaded["speed"].hotswapped
    plain = loading.load_model(ModelSpec(model="tiny"))
    settings = dataclasses.replace(ours.settings, adapters=())  # the speed adapter's 4 steps, guidance 1, shift 5
    base = sampler.sample(plain, image, settings).frames
    plain.pipe.load_lora_weights(str(paths["lightx2v-3"]))  # the published file itself, read by diffusers
    theirs = sampler.sample(plain, image, settings).frames
    # The slot pads the head's exact rank-24 factors to 64 with zeros: sums in another order, equal up to rounding.
    assert np.abs(ours.frames.astype(int) - theirs.astype(int)).max() <= 1
    assert np.abs(theirs.astype(int) - base.astype(int)).max() > 1


def test_compiled_speed_slot_swaps_published_loras_without_recompiling(tmp_path, image):
    from torch._dynamo.utils import counters

    library, _, tr = published_speed_library(tmp_path, 1, 2)
    # and one without biases, over the blocks only: the swap zeroes the slot's biases and other layers
    library.import_file(lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.ALL, rank=32, seed=5, scale=0.1)),
                                tmp_path / "causvid.safetensors"), "speed", name="causvid", base_model="tiny",
                        transformer=tr)
    torch._dynamo.reset()
    model = loading.load_model(ModelSpec(model="tiny", compile=True, compile_backend="eager", speed_slot=True))

    def shot(name, strength=1.0):
        settings = dataclasses.replace(SETTINGS, adapters=(AdapterChoice("speed", name, strength),))
        frames = sampler.sample(model, image, settings, library=library).frames
        assert model.slots.loaded["speed"].hotswapped
        return frames

    outputs = [shot("lightx2v-1")]
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    for name, strength in [("lightx2v-2", 1.0), ("causvid", 1.0), ("lightx2v-1", 0.5), ("lightx2v-2", 0.0)]:
        outputs.append(shot(name, strength))
    assert counters["stats"]["unique_graphs"] == graphs  # 0 new graphs across 4 swaps and strength changes
    assert all(not (a == b).all() for a, b in zip(outputs, outputs[1:]))


def test_compiled_experts_swap_published_pairs_without_new_graphs(tmp_path, image):
    """Regional compile of both Wan2.2 experts: pairs, single files and strengths swap in with zero new graphs."""
    from torch._dynamo.utils import counters

    pipe = loading.build_tiny_pipeline(model="tiny-wan22")
    library = AdapterLibrary(tmp_path / "loras")
    for i, (suffixes, kind) in enumerate([(lf.STYLE, "style"), (lf.STYLE, "style"), (lf.MOTION, "motion")]):
        paths = lf.save_pair(lf.random_pair(pipe, suffixes, rank=4 + 4 * i, seed=i), tmp_path, f"p{i}",
                             naming="comfyui", alpha=4.0)
        library.import_pair(paths["high_noise"], paths["low_noise"], kind, name=f"p{i}", base_model="tiny-wan22",
                            transformer=pipe.transformer)
    library.import_file(lf.save(lf.diffusers_layout(lf.random_lora(pipe.transformer, lf.STYLE, seed=7)),
                                tmp_path / "single.safetensors"), "style", name="single", base_model="tiny-wan22",
                        transformer=pipe.transformer)  # a style file: the low-noise expert only
    torch._dynamo.reset()
    model = loading.load_model(ModelSpec(model="tiny-wan22", compile=True, compile_backend="eager"))
    settings = dataclasses.replace(SETTINGS, steps=4)  # two steps on each expert

    def shot(*choices):
        result = sampler.sample(model, image, dataclasses.replace(settings, adapters=choices), library=library)
        assert result.experts["high_noise"]["steps"] == 2 and result.experts["low_noise"]["steps"] == 2
        assert all(model.slots.loaded[c.slot].hotswapped for c in choices)
        return result.frames

    before = counters["stats"]["unique_graphs"]
    outputs = [shot(AdapterChoice("style", "p0"), AdapterChoice("motion", "p2"))]
    graphs = counters["stats"]["unique_graphs"]
    assert graphs == before + 1  # one graph for the repeated block, shared by every block of both experts
    for choices in [(AdapterChoice("style", "p1"), AdapterChoice("motion", "p2")),
                    (AdapterChoice("style", "single"), AdapterChoice("motion", "p2", 0.5)),
                    (AdapterChoice("style", "p0", 1.5),), (AdapterChoice("style", "p1", 0.0),)]:
        outputs.append(shot(*choices))
    assert counters["stats"]["unique_graphs"] == graphs  # 0 new graphs across 4 swaps on two experts
    assert all(not (a == b).all() for a, b in zip(outputs, outputs[1:]))
    assert model.slots.loaded["style"].experts == ("high_noise", "low_noise")
