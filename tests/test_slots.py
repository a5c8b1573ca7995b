"""Adapter slots on a live tiny pipeline: stacking, strengths, hot-swap, base weights untouched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cinescene import loading, media, sampler, slots
from cinescene.adapters import AdapterLibrary
from cinescene.settings import AdapterChoice, ModelSpec, SampleSettings

import lora_fixtures as lf


@pytest.fixture(scope="module")
def model():
    """A private tiny model: these tests load adapters into it."""
    return loading.load_model(ModelSpec(model="tiny"))


@pytest.fixture(scope="module")
def library(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("lib")
    lib = AdapterLibrary(root / "loras")
    tr = loading.build_tiny_pipeline().transformer
    specs = {"look_a": (lf.STYLE, "style", 1), "look_b": (lf.STYLE, "style", 2),
             "dolly": (lf.MOTION, "motion", 3), "shake": (lf.MOTION, "motion", 4),
             "wide": (lf.ALL, "style", 5), "big": (lf.STYLE, "style", 6)}
    for name, (suffixes, kind, seed) in specs.items():
        rank = 48 if name == "big" else 4
        path = lf.save(lf.diffusers_layout(lf.random_lora(tr, suffixes, rank=rank, seed=seed)),
                       root / f"{name}.safetensors")
        lib.import_file(path, kind, name=name, base_model="tiny", transformer=tr)
    # LoRAs as people share them: ComfyUI files with bias deltas (diff_b), one of them nothing but a bias,
    # and musubi-tuner (kohya) files over some layers only, with alpha != rank.
    for name, (suffixes, kind, seed) in BIASED.items():
        sd = lf.comfyui_layout(lf.random_lora(tr, suffixes, rank=4, seed=seed), alpha=4.0)
        lf.with_bias_deltas(sd, lf.random_lora(tr, suffixes, rank=4, seed=seed), seed=seed)
        lib.import_file(lf.save(sd, root / f"{name}.safetensors"), kind, name=name, base_model="tiny", transformer=tr)
    bias_only = {"diffusion_model.blocks.0.cross_attn.q.diff_b": torch.linspace(-1, 1, 24)}
    lib.import_file(lf.save(bias_only, root / "tint.safetensors"), "style", name="tint", base_model="tiny",
                    transformer=tr)
    for name, (suffixes, kind, seed) in PARTIAL.items():
        path = lf.save(lf.kohya_layout(lf.random_lora(tr, suffixes, rank=4, seed=seed), alpha=8.0),
                       root / f"{name}.safetensors")
        lib.import_file(path, kind, name=name, base_model="tiny", transformer=tr)
    return lib


BIASED = {"graded": (lf.STYLE, "style", 7), "sway": (lf.MOTION, "motion", 8), "wide_graded": (lf.ALL, "style", 12)}
PARTIAL = {"cross_only": (lf.STYLE, "style", 9), "self_only": (lf.MOTION, "motion", 10),
           "kimg_only": (["attn2.add_k_proj"], "style", 11)}


@pytest.fixture(scope="module")
def image(still):
    return media.load_image(still)


SETTINGS = SampleSettings(prompt="a lighthouse", steps=3, frames=5, height=32, width=48, preset="preview")


def run(model, image, library, *choices, **changes):
    settings = dataclasses.replace(SETTINGS, adapters=tuple(choices), **changes)
    return sampler.sample(model, image, settings, library=library).frames


def base_weights(transformer) -> dict[str, torch.Tensor]:
    return {n.replace(".base_layer", ""): p.detach().clone() for n, p in transformer.named_parameters()
            if "lora_" not in n}


def test_slot_targets_resolve_on_the_tiny_model(model):
    assert len(slots.slot_modules(model.pipe.transformer, slots.SLOTS["style"])) == 6 * 2
    assert len(slots.slot_modules(model.pipe.transformer, slots.SLOTS["motion"])) == 4 * 2


def test_strength_zero_is_the_base_model_bit_for_bit(model, image, library):
    fresh = loading.load_model(ModelSpec(model="tiny"))
    base = sampler.sample(fresh, image, SETTINGS).frames
    assert not fresh.slots.prepared
    zero = run(model, image, library, AdapterChoice("style", "look_a", 0.0), AdapterChoice("motion", "dolly", 0.0))
    assert np.array_equal(base, zero)
    # LoRA biases go through lora_B and its scale: at strength 0 they add nothing either.
    zero = run(model, image, library, AdapterChoice("style", "graded", 0.0), AdapterChoice("motion", "sway", 0.0))
    assert np.array_equal(base, zero)
    assert np.array_equal(base, run(model, image, library))  # no choice: both slots off


def test_stacking_and_strengths(model, image, library):
    base = run(model, image, library)
    style = run(model, image, library, AdapterChoice("style", "look_a"))
    motion = run(model, image, library, AdapterChoice("motion", "dolly"))
    both = run(model, image, library, AdapterChoice("style", "look_a"), AdapterChoice("motion", "dolly"))
    half = run(model, image, library, AdapterChoice("style", "look_a", 0.5))
    for a, b in [(base, style), (base, motion), (style, both), (motion, both), (half, base), (half, style)]:
        assert not np.array_equal(a, b)


def test_swap_gives_exactly_what_a_fresh_pipeline_gives(model, image, library):
    # From adapters with biases to ones without: the swap must zero the slots' biases.
    run(model, image, library, AdapterChoice("style", "graded"), AdapterChoice("motion", "sway"))
    assert model.slots.loaded["style"].hotswapped and model.slots.loaded["motion"].hotswapped
    swapped = run(model, image, library, AdapterChoice("style", "look_b"), AdapterChoice("motion", "dolly"))
    assert model.slots.loaded["style"].name == "look_b" and model.slots.loaded["style"].hotswapped
    fresh = loading.load_model(ModelSpec(model="tiny"))
    first_load = run(fresh, image, library, AdapterChoice("style", "look_b"), AdapterChoice("motion", "dolly"))
    assert np.array_equal(swapped, first_load)


def test_library_file_matches_plain_diffusers_loading(model, image, library):
    ours = run(model, image, library, AdapterChoice("style", "look_b"))
    plain = loading.load_model(ModelSpec(model="tiny"))
    plain.pipe.load_lora_weights(str(library.get("look_b").path), adapter_name="x")
    theirs = sampler.sample(plain, image, SETTINGS).frames
    # Our slot pads the rank with zeros, so the sums run in another order: equal up to rounding.
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    assert not np.array_equal(theirs, run(model, image, library))


def test_base_weights_never_change(model, image, library):
    before = base_weights(model.pipe.transformer)
    for choice in [AdapterChoice("style", "look_a"), AdapterChoice("style", "wide"), AdapterChoice("style", "big"),
                   AdapterChoice("style", "look_b", 1.5), AdapterChoice("motion", "shake", -1.0)]:
        run(model, image, library, choice, steps=1)
    slots.empty_slot(model.pipe, model.slots, "style")
    slots.empty_slot(model.pipe, model.slots, "motion")
    after = base_weights(model.pipe.transformer)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_adapters_outside_the_slot_still_load_and_swap_back(model, image, library):
    base = run(model, image, library)
    wide = run(model, image, library, AdapterChoice("style", "wide"))
    assert not model.slots.loaded["style"].hotswapped and not np.array_equal(base, wide)
    big = run(model, image, library, AdapterChoice("style", "big"))  # rank 48 > slot maximum 32
    assert not model.slots.loaded["style"].hotswapped and not np.array_equal(wide, big)
    back = run(model, image, library, AdapterChoice("style", "look_a"))
    assert model.slots.loaded["style"].hotswapped
    assert "style_side" not in model.pipe.transformer.peft_config
    fresh = loading.load_model(ModelSpec(model="tiny"))
    assert np.array_equal(back, run(fresh, image, library, AdapterChoice("style", "look_a")))


def test_adapter_with_biases_outside_the_slot_loads_beside_it_with_strengths(model, image, library):
    base = run(model, image, library)
    zero = run(model, image, library, AdapterChoice("style", "wide_graded", 0.0))
    assert not model.slots.loaded["style"].hotswapped
    assert model.pipe.transformer.peft_config["style_side"].lora_bias
    assert np.array_equal(base, zero)
    ours = run(model, image, library, AdapterChoice("style", "wide_graded", 0.7))
    theirs = plain_sample(image, {"w": (library.root.parent / "wide_graded.safetensors", 0.7)})
    assert close(ours, theirs) and not close(ours, base)


def test_strength_schedule(model, image, library, monkeypatch):
    constant = run(model, image, library, AdapterChoice("motion", "dolly", 1.0))
    flat_ramp = run(model, image, library, AdapterChoice("motion", "dolly", 1.0, 1.0))
    ramp = run(model, image, library, AdapterChoice("motion", "dolly", 1.0, 0.0))
    assert np.array_equal(constant, flat_ramp) and not np.array_equal(constant, ramp)
    seen = []
    real = slots.set_strengths
    monkeypatch.setattr(slots, "set_strengths",
                        lambda pipe, s, state=None: (seen.append(s["motion"]), real(pipe, s, state)))
    run(model, image, library, AdapterChoice("motion", "dolly", 1.0, 0.0), steps=5)
    assert seen == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_record_names_adapters_strengths_and_hashes(model, image, library, tmp_path):
    settings = dataclasses.replace(SETTINGS, adapters=(AdapterChoice("style", "look_a", 0.8),
                                                       AdapterChoice("motion", "dolly", 1.0, 0.2)))
    result = sampler.sample_to_file(model, image, settings, tmp_path / "x.mp4", library=library)
    entries = {e["slot"]: e for e in result.record["adapters"]}
    assert entries["style"]["name"] == "look_a" and entries["style"]["strength"] == 0.8
    assert entries["style"]["sha256"] == library.get("look_a").sha256
    assert entries["motion"]["end_strength"] == 0.2
    assert result.record["settings"]["adapters"][1]["name"] == "dolly"


def test_adapter_for_another_base_is_refused(model, image, tmp_path):
    from cinescene.errors import InputError

    lib = AdapterLibrary(tmp_path / "loras")
    other = loading.build_tiny_pipeline()
    info = lib.import_file(lf.save(lf.diffusers_layout(lf.random_lora(other.transformer, lf.STYLE)),
                                   tmp_path / "s.safetensors"), "style", name="s", base_model="tiny",
                           transformer=other.transformer)
    sidecar = info.path.with_suffix(".json")
    import json

    data = json.loads(sidecar.read_text())
    data["base_fingerprint"]["inner_dim"] = 5120
    sidecar.write_text(json.dumps(data))
    with pytest.raises(InputError, match="does not match the loaded model"):
        run(model, image, lib, AdapterChoice("style", "s"))


def plain_sample(image, files: dict[str, tuple[object, float]]):
    """Frames from a fresh tiny pipeline with plain diffusers loading: {adapter name: (file or state dict, weight)}."""
    plain = loading.load_model(ModelSpec(model="tiny"))
    with slots.quiet_peft():
        for name, (source, _) in files.items():
            plain.pipe.load_lora_weights(source if isinstance(source, dict) else str(source), adapter_name=name)
    plain.pipe.set_adapters(list(files), [weight for _, weight in files.values()])
    return sampler.sample(plain, image, SETTINGS).frames


def close(a, b) -> bool:
    # Slots pad ranks with zeros, so sums run in another order: equal up to rounding.
    return int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def test_biased_adapters_match_plain_diffusers_at_any_strength(model, image, library):
    ours = run(model, image, library, AdapterChoice("style", "graded", 0.5), AdapterChoice("motion", "sway", -1.0))
    assert model.slots.loaded["style"].hotswapped
    # diffusers loads the original ComfyUI files itself (diff_b -> lora_B.bias); its weights scale lora_B, bias and all.
    root = library.root.parent
    theirs = plain_sample(image, {"g": (root / "graded.safetensors", 0.5), "s": (root / "sway.safetensors", -1.0)})
    assert close(ours, theirs)
    assert not close(ours, run(model, image, library, AdapterChoice("style", "graded", 1.0),
                               AdapterChoice("motion", "sway", -1.0)))


def test_partial_musubi_files_sample_like_plain_diffusers(model, image, library):
    tr = loading.build_tiny_pipeline().transformer
    effective = {name: lf.diffusers_layout(lf.effective(lf.random_lora(tr, suffixes, rank=4, seed=seed), 8.0))
                 for name, (suffixes, _, seed) in PARTIAL.items()}
    ours = run(model, image, library, AdapterChoice("style", "cross_only"), AdapterChoice("motion", "self_only"))
    theirs = plain_sample(image, {"c": (effective["cross_only"], 1.0), "m": (effective["self_only"], 1.0)})
    assert close(ours, theirs) and not close(ours, run(model, image, library))
    ours = run(model, image, library, AdapterChoice("style", "kimg_only"))
    assert close(ours, plain_sample(image, {"k": (effective["kimg_only"], 1.0)}))
    assert not close(ours, run(model, image, library))


def test_strength_scales_the_bias_with_the_weights(model, library):
    """At strength s a slot adds s * (B A x + bias): 0 is the base layer exactly, and the bias never stays behind."""
    from safetensors.torch import load_file

    x = torch.randn(1, 3, 24, generator=torch.Generator().manual_seed(0))

    def at(strength):
        slots.set_strengths(model.pipe, {"style": strength, "motion": 0.0}, model.slots)
        with torch.no_grad():
            return layer(x)

    for name in ("graded", "tint"):
        sampler.activate_adapters(model, (AdapterChoice("style", name),), library)
        layer = model.pipe.transformer.blocks[0].attn2.to_q  # a peft LoRA layer once the slots are prepared
        with torch.no_grad():
            base = layer.base_layer(x)
        assert model.slots.loaded["style"].hotswapped
        stored = load_file(str(library.get(name).path))
        key = "transformer.blocks.0.attn2.to_q.lora_"
        delta = x @ (stored[key + "B.weight"] @ stored[key + "A.weight"]).T + stored[key + "B.bias"]
        assert stored[key + "B.bias"].abs().sum() > 0
        assert torch.equal(at(0.0), base)
        for strength in (1.0, 0.5, -2.0):
            torch.testing.assert_close(at(strength) - base, strength * delta, rtol=1e-4, atol=1e-5)
    slots.empty_slot(model.pipe, model.slots, "style")
    assert torch.equal(at(1.0), base)  # an emptied slot holds nothing, bias included, at any strength
    slots.set_strengths(model.pipe, {"style": 0.0, "motion": 0.0}, model.slots)


# -- Wan2.2 A14B: slots on both experts --------------------------------------------------------------------

PAIR_SETTINGS = dataclasses.replace(SETTINGS, steps=4)  # shift 5, boundary 0.9: two steps on each expert


@pytest.fixture(scope="module")
def wan22():
    return loading.load_model(ModelSpec(model="tiny-wan22"))


@pytest.fixture(scope="module")
def pair_library(tmp_path_factory):
    """Published-style pairs (three layouts, three namings), single files, imported; and where their files are."""
    root = tmp_path_factory.mktemp("pairs")
    lib = AdapterLibrary(root / "loras")
    pipe = loading.build_tiny_pipeline(model="tiny-wan22")
    files = {}
    for name, (suffixes, kind, seed, naming, layout) in PAIRS.items():
        halves = lf.random_pair(pipe, suffixes, seed=seed)
        files[name] = lf.save_pair(halves, root, name, naming=naming, layout=layout, alpha=8.0)
        lib.import_pair(files[name]["high_noise"], files[name]["low_noise"], kind, name=name, base_model="tiny-wan22",
                        transformer=pipe.transformer, transformer_2=pipe.transformer_2)
    for name, (suffixes, kind, seed) in SINGLES.items():
        files[name] = lf.save(lf.comfyui_layout(lf.random_lora(pipe.transformer, suffixes, seed=seed), alpha=4.0),
                              root / f"{name}.safetensors")
        lib.import_file(files[name], kind, name=name, base_model="tiny-wan22", transformer=pipe.transformer)
    return lib, files


# musubi-tuner's files cover every linear layer of every block (and diffusers' musubi converter reads no other):
# a motion pair in that layout loads beside the slots, as a side adapter on each expert.
PAIRS = {"grade": (lf.STYLE, "style", 21, "comfyui", "comfyui"), "orbit": (lf.ALL, "motion", 22, "kijai", "musubi"),
         "teal": (lf.STYLE, "style", 23, "lightx2v", "diffusers"), "push": (lf.MOTION, "motion", 24, "ai-toolkit",
                                                                           "comfyui")}
SINGLES = {"one-look": (lf.STYLE, "style", 25), "one-move": (lf.MOTION, "motion", 26)}


def plain_wan22(image, loads, settings=PAIR_SETTINGS):
    """Frames from a fresh tiny-wan22 with plain diffusers loading: [(file, adapter name, into transformer_2, weight)]."""
    plain = loading.load_model(ModelSpec(model="tiny-wan22"))
    with slots.quiet_peft():
        for path, name, second, _ in loads:
            plain.pipe.load_lora_weights(str(path), adapter_name=name, load_into_transformer_2=second)
    if loads:
        plain.pipe.set_adapters([name for _, name, _, _ in loads], [weight for *_, weight in loads])
    return sampler.sample(plain, image, settings).frames


def both_experts_ran(result):
    return result.experts["high_noise"]["steps"] > 0 and result.experts["low_noise"]["steps"] > 0


@pytest.mark.parametrize("name", list(PAIRS))
def test_a_published_pair_samples_like_plain_diffusers_loading_it(wan22, image, pair_library, name):
    """diffusers: ``transformer`` is the high-noise expert, ``load_into_transformer_2=True`` the low-noise one."""
    library, files = pair_library
    slot = PAIRS[name][1]
    result = sampler.sample(wan22, image, dataclasses.replace(PAIR_SETTINGS, adapters=(AdapterChoice(slot, name, 0.7),)),
                            library=library)
    assert both_experts_ran(result) and wan22.slots.loaded[slot].hotswapped == (name != "orbit")
    high, low = files[name]["high_noise"], files[name]["low_noise"]
    theirs = plain_wan22(image, [(high, "h", False, 0.7), (low, "l", True, 0.7)])
    assert close(result.frames, theirs)
    # what the comparison can tell apart: the halves the other way round, or another strength
    assert not close(result.frames, plain_wan22(image, [(low, "h", False, 0.7), (high, "l", True, 0.7)]))
    assert not close(result.frames, plain_wan22(image, [(high, "h", False, 1.0), (low, "l", True, 1.0)]))


def test_slots_are_prepared_on_both_experts_and_strength_zero_is_the_base(wan22, image, pair_library):
    library, _ = pair_library
    base = sampler.sample(loading.load_model(ModelSpec(model="tiny-wan22")), image, PAIR_SETTINGS).frames
    before = {n: base_weights(m) for n, m in (("high", wan22.pipe.transformer), ("low", wan22.pipe.transformer_2))}
    zero = sampler.sample(wan22, image, dataclasses.replace(PAIR_SETTINGS, adapters=(
        AdapterChoice("style", "grade", 0.0), AdapterChoice("motion", "orbit", 0.0))), library=library).frames
    for module in (wan22.pipe.transformer, wan22.pipe.transformer_2):
        assert {"style", "motion"} <= set(module.peft_config)
        assert len(slots.slot_modules(module, slots.SLOTS["style"])) == 4 * 2  # no image cross-attention in Wan2.2
    assert np.array_equal(base, zero)
    assert np.array_equal(base, sampler.sample(wan22, image, PAIR_SETTINGS, library=library).frames)
    after = {n: base_weights(m) for n, m in (("high", wan22.pipe.transformer), ("low", wan22.pipe.transformer_2))}
    assert all(torch.equal(before[n][k], after[n][k]) for n in before for k in before[n])


@pytest.mark.parametrize("placement, into", [("both", (False, True)), ("high_noise", (False,)),
                                             ("low_noise", (True,))])
def test_a_single_file_acts_on_the_experts_its_placement_names(wan22, image, pair_library, placement, into):
    library, files = pair_library
    library.set_placement("one-look", placement)
    ours = sampler.sample(wan22, image, dataclasses.replace(PAIR_SETTINGS, adapters=(
        AdapterChoice("style", "one-look"),)), library=library)
    assert ours.adapters[0]["experts"] == [("high_noise", "low_noise")[second] for second in into]
    theirs = plain_wan22(image, [(files["one-look"], f"x{i}", second, 1.0) for i, second in enumerate(into)])
    assert close(ours.frames, theirs)
    others = [p for p in ("both", "high_noise", "low_noise") if p != placement]
    library.set_placement("one-look", others[0])
    assert not close(ours.frames, sampler.sample(wan22, image, dataclasses.replace(PAIR_SETTINGS, adapters=(
        AdapterChoice("style", "one-look"),)), library=library).frames)


def test_a_pair_placed_on_one_expert_uses_only_that_half(wan22, image, pair_library):
    library, files = pair_library
    library.set_placement("push", "low_noise")
    try:
        ours = sampler.sample(wan22, image, dataclasses.replace(PAIR_SETTINGS, adapters=(
            AdapterChoice("motion", "push", 0.5),)), library=library)
    finally:
        library.set_placement("push", "both")
    assert ours.adapters[0]["experts"] == ["low_noise"]
    assert close(ours.frames, plain_wan22(image, [(files["push"]["low_noise"], "l", True, 0.5)]))


def test_swapping_pairs_and_singles_gives_what_a_fresh_pipeline_gives(wan22, image, pair_library):
    library, _ = pair_library
    library.set_placement("one-move", "high_noise")
    sequence = [(AdapterChoice("style", "grade"), AdapterChoice("motion", "push")),
                (AdapterChoice("style", "teal"), AdapterChoice("motion", "one-move")),
                (AdapterChoice("style", "one-look", 0.8), AdapterChoice("motion", "orbit", 1.2)),  # beside the slot
                (AdapterChoice("style", "grade", 0.5), AdapterChoice("motion", "push"))]
    for choices in sequence:
        swapped = sampler.sample(wan22, image, dataclasses.replace(PAIR_SETTINGS, adapters=choices), library=library)
        assert all(wan22.slots.loaded[c.slot].hotswapped == (c.name != "orbit") for c in choices)
        fresh = loading.load_model(ModelSpec(model="tiny-wan22"))
        first = sampler.sample(fresh, image, dataclasses.replace(PAIR_SETTINGS, adapters=choices), library=library)
        assert np.array_equal(swapped.frames, first.frames), [c.name for c in choices]


def test_the_record_names_each_half(wan22, image, pair_library, tmp_path):
    library, _ = pair_library
    settings = dataclasses.replace(PAIR_SETTINGS, adapters=(AdapterChoice("style", "grade", 0.6),))
    result = sampler.sample_to_file(wan22, image, settings, tmp_path / "shot.mp4", library=library)
    entry = result.record["adapters"][0]
    info = library.get("grade")
    assert entry["sha256"] == info.sha256 and entry["placement"] == "both"
    assert entry["experts"] == ["high_noise", "low_noise"]
    assert entry["parts"] == {e: p["sha256"] for e, p in info.parts.items()}


def test_a_pair_on_a_one_expert_model_is_refused(image, pair_library):
    from cinescene.errors import InputError

    library, _ = pair_library
    one = loading.load_model(ModelSpec(model="tiny-ti2v"))  # the same fingerprint as tiny-wan22, one transformer
    with pytest.raises(InputError, match="'grade' is a Wan2.2 pair"):
        sampler.sample(one, image, dataclasses.replace(PAIR_SETTINGS, height=64, width=96,
                                                       adapters=(AdapterChoice("style", "grade"),)), library=library)
