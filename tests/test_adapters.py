"""The adapter library on disk: import, list, inspect, rename, remove, export; refusals leave it untouched."""

from __future__ import annotations

import json
import os

import pytest
import torch

from cinescene import adapters, loading, lora_formats, pair_files
from cinescene.adapters import AdapterLibrary
from cinescene.errors import InputError
from cinescene.names import from_filename

import lora_fixtures as lf
from conftest import files_under


@pytest.fixture(scope="module")
def transformer():
    return loading.build_tiny_pipeline().transformer


@pytest.fixture
def library(tmp_path):
    return AdapterLibrary(tmp_path / "loras")


def style_file(tmp_path, transformer, name="look.safetensors", seed=0, suffixes=lf.STYLE, rank=4):
    return lf.save(lf.comfyui_layout(lf.random_lora(transformer, suffixes, rank=rank, seed=seed), alpha=float(rank)),
                   tmp_path / name)


def test_import_writes_weights_and_sidecar(library, transformer, tmp_path):
    info = library.import_file(style_file(tmp_path, transformer), "style", name="noir", base_model="tiny",
                               transformer=transformer, description="high-contrast night look")
    assert info.path == library.root / "style" / "noir.safetensors"
    sidecar = json.loads(info.path.with_suffix(".json").read_text())
    assert sidecar["kind"] == "style" and sidecar["rank"] == 4 and sidecar["alpha"] == 4.0
    assert sidecar["sha256"] == adapters.sha256_file(info.path)
    assert sidecar["source_format"] == "comfyui" and sidecar["hotswap"] is True
    assert set(sidecar["target_modules"]) == set(lf.STYLE)
    assert sidecar["base_model"] == "tiny" and sidecar["base_fingerprint"]["inner_dim"] == 24
    assert [i.name for i in library.list()] == ["noir"]
    assert library.get("noir").description == "high-contrast night look"
    assert sorted(files_under(library.root)) == ["style/noir.json", "style/noir.safetensors"]


def test_stored_file_is_plain_diffusers_format(library, transformer, tmp_path):
    from diffusers import WanImageToVideoPipeline

    info = library.import_file(style_file(tmp_path, transformer), "style", name="noir", base_model="tiny",
                               transformer=transformer)
    sd = WanImageToVideoPipeline.lora_state_dict(str(info.path))
    assert all(k.startswith("transformer.blocks.") and ".lora_" in k for k in sd)


def test_adapter_for_other_layers_imports_but_is_not_hotswappable(library, transformer, tmp_path):
    info = library.import_file(style_file(tmp_path, transformer, suffixes=lf.ALL), "style", name="everything",
                               base_model="tiny", transformer=transformer)
    assert info.hotswap is False and "outside the style slot" in info.hotswap_note
    assert info.label() == "everything (slow load)"


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "..", ".hidden", "none", "x" * 65, "bad name", "nul\x00"])
def test_hostile_names_are_refused(library, transformer, tmp_path, name):
    before = files_under(tmp_path)
    with pytest.raises(InputError, match="name"):
        library.import_file(style_file(tmp_path, transformer), "style", name=name, base_model="tiny",
                            transformer=transformer)
    assert {k: v for k, v in files_under(tmp_path).items() if not k.startswith("look")} == \
        {k: v for k, v in before.items() if not k.startswith("look")}
    assert not (tmp_path / "evil").exists()


def test_empty_name_is_refused_where_no_file_name_can_stand_in():
    with pytest.raises(InputError, match="needs a name"):
        adapters.check_name("")


def test_suggested_names_are_safe():
    assert from_filename("My Cool LoRA (v2).safetensors", "adapter") == "My-Cool-LoRA-v2"
    assert from_filename("../../etc/passwd.safetensors", "adapter") == "passwd"
    adapters.check_name(from_filename("..weird...name.safetensors", "adapter"))


def test_duplicate_names_are_refused_across_kinds(library, transformer, tmp_path):
    library.import_file(style_file(tmp_path, transformer), "style", name="shared", base_model="tiny",
                        transformer=transformer)
    motion = lf.save(lf.diffusers_layout(lf.random_lora(transformer, lf.MOTION)), tmp_path / "m.safetensors")
    with pytest.raises(InputError, match="already exists"):
        library.import_file(motion, "motion", name="shared", base_model="tiny", transformer=transformer)


@pytest.mark.parametrize("damage", ["truncate", "pickle", "foreign-layers", "unknown-layout"])
def test_failed_import_leaves_library_exactly_as_it_was(library, transformer, tmp_path, damage):
    library.import_file(style_file(tmp_path, transformer), "style", name="keep", base_model="tiny",
                        transformer=transformer)
    before = files_under(library.root)
    bad = tmp_path / "bad.safetensors"
    if damage == "truncate":
        data = style_file(tmp_path, transformer, "full.safetensors").read_bytes()
        bad.write_bytes(data[:-64])
    elif damage == "pickle":
        bad = tmp_path / "bad.ckpt"
        torch.save({"x": torch.zeros(1)}, bad)
    elif damage == "foreign-layers":
        lf.save({"transformer.blocks.9.attn1.to_q.lora_A.weight": torch.zeros(2, 24),
                 "transformer.blocks.9.attn1.to_q.lora_B.weight": torch.zeros(24, 2)}, bad)
    else:
        lf.save({"model.layers.0.mlp.lora_up": torch.zeros(2, 2)}, bad)
    with pytest.raises(InputError):
        library.import_file(bad, "style", name="keep2", base_model="tiny", transformer=transformer)
    assert files_under(library.root) == before


def test_crash_while_committing_rolls_back(library, transformer, tmp_path, monkeypatch):
    library.import_file(style_file(tmp_path, transformer, seed=1), "style", name="noir", base_model="tiny",
                        transformer=transformer)
    before = files_under(library.root)
    real_replace = os.replace
    failed = []

    def flaky_replace(src, dst):
        # Fail once, when the new sidecar is moved into place (after the new weights already were).
        if str(dst).endswith("noir.json") and "backup" not in str(dst) and "noir.json" not in str(src) and not failed:
            failed.append(dst)
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(adapters.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        library.import_file(style_file(tmp_path, transformer, seed=2), "style", name="noir", base_model="tiny",
                            transformer=transformer, overwrite=True)
    monkeypatch.setattr(adapters.os, "replace", real_replace)
    assert failed and files_under(library.root) == before


def test_rename_and_remove(library, transformer, tmp_path):
    library.import_file(style_file(tmp_path, transformer), "style", name="a", base_model="tiny",
                        transformer=transformer)
    renamed = library.rename("a", "b")
    assert renamed.name == "b" and [i.name for i in library.list()] == ["b"]
    assert json.loads(renamed.path.with_suffix(".json").read_text())["name"] == "b"
    with pytest.raises(InputError, match="name"):
        library.rename("b", "../c")
    library.remove("b")
    assert library.list() == [] and files_under(library.root) == {}
    with pytest.raises(InputError, match="no adapter named"):
        library.remove("b")


def test_tampered_weights_are_detected(library, transformer, tmp_path):
    info = library.import_file(style_file(tmp_path, transformer), "style", name="a", base_model="tiny",
                               transformer=transformer)
    library.verified_path(info)
    data = bytearray(info.path.read_bytes())
    data[-1] ^= 0xFF
    info.path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match its sidecar"):
        library.verified_path(library.get("a"))


def test_export_to_comfyui_and_back(library, transformer, tmp_path):
    from cinescene import lora_formats

    info = library.import_file(style_file(tmp_path, transformer), "style", name="a", base_model="tiny",
                               transformer=transformer)
    out = library.export("a", tmp_path / "a_comfy.safetensors")
    sd, _ = lora_formats.read_safetensors(out)
    assert all(k.startswith("diffusion_model.blocks.") for k in sd)
    again = library.import_file(out, "style", name="a2", base_model="tiny", transformer=transformer)
    original, _ = lora_formats.read_safetensors(info.path)
    reimported, _ = lora_formats.read_safetensors(again.path)
    assert original.keys() == reimported.keys()
    assert all((original[k] == reimported[k]).all() for k in original)


def test_speed_lora_with_biases_imports_as_hotswappable(library, transformer, tmp_path):
    sd, _ = lf.published_speed_lora(transformer)
    info = library.import_file(lf.save(sd, tmp_path / "lightx2v_rank64.safetensors"), "speed", name="lightx2v",
                               base_model="tiny", transformer=transformer)
    assert info.hotswap and info.hotswap_note == "" and info.rank == 64
    assert "proj_out" in info.target_modules and "condition_embedder.time_proj" in info.target_modules
    assert any("that were all zeros" in n for n in info.import_notes) and info.dropped_full_deltas == []
    stored, _ = lora_formats.read_safetensors(info.path)
    assert sum(k.endswith(".lora_B.bias") for k in stored) == len(lf.linear_shapes(transformer, blocks_only=False))


def test_full_deltas_are_refused_unless_dropped_and_then_listed(library, transformer, tmp_path):
    sd, _ = lf.published_speed_lora(transformer, full_deltas=0.01)
    path = lf.save(sd, tmp_path / "causvid.safetensors")
    with pytest.raises(InputError, match="full deltas a LoRA cannot hold"):
        library.import_file(path, "speed", name="causvid", base_model="tiny", transformer=transformer)
    assert files_under(library.root) == {}
    info = library.import_file(path, "speed", name="causvid", base_model="tiny", transformer=transformer,
                               drop_full_deltas=True)
    sidecar = json.loads(info.path.with_suffix(".json").read_text())
    assert "blocks.1.self_attn.norm_q.diff" in sidecar["dropped_full_deltas"]
    assert "patch_embedding.diff" in sidecar["dropped_full_deltas"]
    assert any("left out on request" in n for n in sidecar["import_notes"])


def test_hotswap_verdict_follows_the_current_slots(library, transformer, tmp_path):
    """A sidecar written when slots refused biases reads as hot-swappable now; one that does not fit still not."""
    biased = lf.comfyui_layout(lf.random_lora(transformer, lf.STYLE, rank=4), alpha=4.0)
    biased["diffusion_model.blocks.0.cross_attn.q.diff_b"] = torch.ones(24)
    info = library.import_file(lf.save(biased, tmp_path / "b.safetensors"), "style", name="graded",
                               base_model="tiny", transformer=transformer)
    sidecar = info.path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    assert data["hotswap"] is True
    sidecar.write_text(json.dumps({**data, "hotswap": False,
                                   "hotswap_note": "it carries LoRA biases (diff_b), which hot-swapping cannot copy"}))
    assert library.get("graded").hotswap and library.get("graded").label() == "graded"
    wide = library.import_file(style_file(tmp_path, transformer, "w.safetensors", suffixes=lf.ALL), "style",
                               name="wide", base_model="tiny", transformer=transformer)
    assert not library.get("wide").hotswap and "outside the style slot" in library.get("wide").hotswap_note
    assert wide.hotswap_note.split("(e.g.")[0] == library.get("wide").hotswap_note.split("(e.g.")[0]


# -- Wan2.2 pairs: one adapter, two parts -----------------------------------------------------------------


@pytest.fixture(scope="module")
def wan22():
    return loading.build_tiny_pipeline(model="tiny-wan22")


def import_pair(library, wan22, tmp_path, *, name=None, seed=0, naming="kijai", layout="comfyui", **options):
    halves = lf.random_pair(wan22, lf.MOTION, seed=seed)
    paths = lf.save_pair(halves, tmp_path / f"src{seed}", "dolly", naming=naming, layout=layout, alpha=4.0)
    info = library.import_pair(paths["high_noise"], paths["low_noise"], "motion", name=name, base_model="tiny-wan22",
                               transformer=wan22.transformer, transformer_2=wan22.transformer_2, **options)
    return info, halves, paths


def test_a_pair_is_one_adapter_with_two_parts(library, wan22, tmp_path):
    info, halves, paths = import_pair(library, wan22, tmp_path)
    assert info.name == "Wan2.2-dolly_I2V-A14B-lora_fp16"  # what Kijai's two file names share
    assert sorted(files_under(library.root)) == [f"motion/{info.name}.json", f"motion/{info.name}@high_noise.safetensors",
                                                 f"motion/{info.name}@low_noise.safetensors"]
    sidecar = json.loads(info.path.with_suffix(".json").read_text())
    assert sidecar["placement"] == "both" and set(sidecar["parts"]) == {"high_noise", "low_noise"}
    for expert, part in sidecar["parts"].items():
        stored = info.path.parent / part["file"]
        assert part["sha256"] == adapters.sha256_file(stored) and part["size_bytes"] == stored.stat().st_size
        assert part["source_file"] == paths[expert].name and part["source_format"] == "comfyui"
        # each half holds its own expert's LoRA, exactly
        delta = lf.canonical_delta(lora_formats.read_safetensors(stored)[0])
        assert all(torch.allclose(delta[m], d) for m, d in lf.expected_delta(halves[expert], alpha=4.0).items())
    assert sidecar["sha256"] == adapters.pair_digest({e: p["sha256"] for e, p in sidecar["parts"].items()})
    assert sidecar["hotswap"] is True and sidecar["rank"] == 4 and set(sidecar["target_modules"]) == set(lf.MOTION)
    assert [i.name for i in library.list()] == [info.name] and library.get(info.name).label().endswith("(pair)")
    assert [f.expert for f in library.verified_files(library.get(info.name))] == ["high_noise", "low_noise"]
    with pytest.raises(InputError, match="is a Wan2.2 pair"):
        library.verified_path(info)


def test_a_tampered_half_is_named(library, wan22, tmp_path):
    info, _, _ = import_pair(library, wan22, tmp_path, name="duo")
    low = info.path.parent / "duo@low_noise.safetensors"
    data = bytearray(low.read_bytes())
    data[-1] ^= 0xFF
    low.write_bytes(bytes(data))
    with pytest.raises(InputError, match="duo@low_noise.safetensors does not match its sidecar"):
        library.verified_files(library.get("duo"))


def test_a_failed_pair_import_leaves_the_library_as_it_was(library, wan22, tmp_path):
    import_pair(library, wan22, tmp_path, name="duo")
    before = files_under(library.root)
    halves = lf.random_pair(wan22, lf.MOTION, seed=3)
    paths = lf.save_pair(halves, tmp_path / "bad", "x", naming="ai-toolkit")
    paths["low_noise"].write_bytes(paths["low_noise"].read_bytes()[:-10])  # a truncated download
    with pytest.raises(InputError, match="x_low_noise.safetensors is not a valid safetensors file"):
        library.import_pair(paths["high_noise"], paths["low_noise"], "motion", name="duo", base_model="tiny-wan22",
                            transformer=wan22.transformer, overwrite=True)
    with pytest.raises(InputError, match="is named as the low-noise half"):
        library.import_pair(paths["low_noise"], paths["high_noise"], "motion", name="duo2", base_model="tiny-wan22",
                            transformer=wan22.transformer)
    assert files_under(library.root) == before


def test_rename_overwrite_and_remove_a_pair(library, wan22, tmp_path):
    import_pair(library, wan22, tmp_path, name="duo")
    renamed = library.rename("duo", "pair-b")
    assert sorted(files_under(library.root)) == ["motion/pair-b.json", "motion/pair-b@high_noise.safetensors",
                                                 "motion/pair-b@low_noise.safetensors"]
    library.verified_files(renamed)
    # A single file over the pair: the pair's parts go, nothing stale stays.
    single = lf.save(lf.comfyui_layout(lf.random_lora(wan22.transformer, lf.MOTION, seed=4), alpha=4.0),
                     tmp_path / "single.safetensors")
    library.import_file(single, "motion", name="pair-b", base_model="tiny-wan22", transformer=wan22.transformer,
                        overwrite=True)
    assert sorted(files_under(library.root)) == ["motion/pair-b.json", "motion/pair-b.safetensors"]
    import_pair(library, wan22, tmp_path, name="pair-b", seed=5, overwrite=True)
    assert sorted(files_under(library.root)) == ["motion/pair-b.json", "motion/pair-b@high_noise.safetensors",
                                                 "motion/pair-b@low_noise.safetensors"]
    library.remove("pair-b")
    assert files_under(library.root) == {}


def test_export_a_pair_and_import_it_back(library, wan22, tmp_path):
    info, _, _ = import_pair(library, wan22, tmp_path, name="duo", layout="musubi")
    out = library.export_pair("duo", tmp_path / "duo_comfy.safetensors")
    assert {e: p.name for e, p in out.items()} == {"high_noise": "duo_comfy_high_noise.safetensors",
                                                   "low_noise": "duo_comfy_low_noise.safetensors"}
    with pytest.raises(InputError, match="export it as two files"):
        library.export("duo", tmp_path / "x.safetensors")
    again = library.import_pair(*pair_files.sort_pair(out["low_noise"], out["high_noise"]), "motion",
                                base_model="tiny-wan22", transformer=wan22.transformer)
    assert again.name == "duo_comfy"
    for expert in ("high_noise", "low_noise"):
        original, _ = lora_formats.read_safetensors(info.path.parent / f"duo@{expert}.safetensors")
        back, _ = lora_formats.read_safetensors(again.path.parent / f"duo_comfy@{expert}.safetensors")
        assert original.keys() == back.keys() and all(torch.equal(original[k], back[k]) for k in original)


def test_placement_defaults_by_kind_follows_a_marked_file_name_and_can_be_changed(library, transformer, wan22,
                                                                                  tmp_path):
    style = library.import_file(style_file(tmp_path, transformer), "style", name="look", base_model="tiny",
                                transformer=transformer)
    assert style.placement == "low_noise"
    motion = lf.save(lf.comfyui_layout(lf.random_lora(wan22.transformer, lf.MOTION), alpha=4.0),
                     tmp_path / "orbit_HIGH_fp16.safetensors")
    marked = library.import_file(motion, "motion", name="orbit", base_model="tiny-wan22",
                                 transformer=wan22.transformer)
    assert marked.placement == "high_noise" and "its file name says so" in marked.import_notes[-1]
    pinned = library.import_file(motion, "motion", name="orbit2", base_model="tiny-wan22",
                                 transformer=wan22.transformer, placement="both")
    assert pinned.placement == "both"
    changed = library.set_placement("look", "both")
    assert changed.placement == "both" and library.get("look").placement == "both"
    assert json.loads(changed.path.with_suffix(".json").read_text())["placement"] == "both"
    with pytest.raises(InputError, match="unknown placement"):
        library.set_placement("look", "everywhere")
    with pytest.raises(InputError, match="unknown placement"):
        library.import_file(motion, "motion", name="orbit3", base_model="tiny-wan22", transformer=wan22.transformer,
                            placement="middle")


def test_the_trainer_stores_a_pair_from_state_dicts(library, wan22):
    """add_pair: what a run that trained both experts publishes (canonical state dicts, one per expert)."""
    halves = lf.random_pair(wan22, lf.STYLE, rank=8, seed=6)
    high, _ = lora_formats.to_canonical(lf.diffusers_layout(halves["high_noise"]))
    low, _ = lora_formats.to_canonical(lf.diffusers_layout(halves["low_noise"]))
    info = library.add_pair("style", name="grade-run", high_noise=high, low_noise=low, base_model="tiny-wan22",
                            transformer=wan22.transformer, transformer_2=wan22.transformer_2,
                            trained_on={"run": "grade"})
    assert info.is_pair and info.placement == "both" and info.trained_on == {"run": "grade"}
    stored = {f.expert: lora_formats.read_safetensors(f.path)[0] for f in library.verified_files(info)}
    assert all(torch.equal(stored["high_noise"][k], high[k]) for k in high)
    assert all(torch.equal(stored["low_noise"][k], low[k]) for k in low)
    with pytest.raises(InputError, match="does not have"):  # the halves are checked against the experts' layers
        library.add_pair("style", name="wrong", high_noise=high, low_noise={"transformer.blocks.9.attn2.to_q.lora_A.weight":
                                                                             torch.zeros(8, 24),
                                                                             "transformer.blocks.9.attn2.to_q.lora_B.weight":
                                                                             torch.zeros(24, 8)},
                         base_model="tiny-wan22", transformer=wan22.transformer)
