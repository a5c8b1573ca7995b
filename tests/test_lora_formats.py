from __future__ import annotations

import json
import pickle

import pytest
import torch

from cinescene import lora_formats
from cinescene.errors import InputError

import lora_fixtures as lf


@pytest.fixture(scope="module")
def transformer(tiny_model):
    from cinescene import loading

    return loading.build_tiny_pipeline().transformer


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "build, layout, alpha",
    [
        (lambda p: lf.diffusers_layout(p), "diffusers", None),
        (lambda p: lf.diffusers_layout(p, prefix=""), "diffusers", None),
        (lambda p: lf.peft_layout(p), "peft", None),
        (lambda p: lf.comfyui_layout(p, alpha=2.0), "comfyui", 2.0),
        (lambda p: lf.comfyui_layout(p, alpha=None, down_up=False), "comfyui", None),
        (lambda p: lf.kohya_layout(p, alpha=8.0), "musubi-kohya", 8.0),
        (lambda p: lf.diffsynth_layout(p), "diffsynth", None),
    ],
    ids=["diffusers", "diffusers-unprefixed", "peft", "comfyui-down-up-alpha", "comfyui-A-B", "musubi-kohya",
         "diffsynth"],
)
def test_every_layout_converts_to_the_same_weights(transformer, build, layout, alpha):
    # musubi's kohya keys only convert when every block carries all layers, as musubi writes them.
    pairs = lf.random_lora(transformer, lf.ALL, rank=4, seed=1)
    canonical, detected = lora_formats.to_canonical(build(pairs))
    assert detected == layout
    assert all(k.startswith("transformer.blocks.") for k in canonical)
    _close(lf.canonical_delta(canonical), lf.expected_delta(pairs, alpha))
    lora_formats.check_against(canonical, transformer, "tiny")


def test_diffusers_metadata_alpha_is_folded(transformer):
    pairs = lf.random_lora(transformer, lf.MOTION, rank=4, seed=2)
    meta = {"lora_adapter_metadata": json.dumps({"transformer.r": 4, "transformer.lora_alpha": 12,
                                                 "transformer.alpha_pattern": {}})}
    canonical, _ = lora_formats.to_canonical(lf.diffusers_layout(pairs), meta)
    _close(lf.canonical_delta(canonical), lf.expected_delta(pairs, alpha=12.0))


def test_mixed_ranks_are_padded_to_one_rank_without_changing_the_product(transformer):
    pairs = lf.random_lora(transformer, lf.STYLE, rank=4, seed=3, ranks={"attn2.add_k_proj": 2})
    canonical, _ = lora_formats.to_canonical(lf.diffusers_layout(pairs))
    assert {v.shape[0] for k, v in canonical.items() if ".lora_A." in k} == {4}
    _close(lf.canonical_delta(canonical), lf.expected_delta(pairs))


def test_unknown_layout_is_refused_naming_keys():
    with pytest.raises(InputError, match="unrecognised LoRA key layout.*unet.down_blocks"):
        lora_formats.to_canonical({"unet.down_blocks.0.lora.up.weight": torch.zeros(2, 2)})


def test_layers_the_model_lacks_are_refused_by_name(transformer):
    pairs = lf.random_lora(transformer, lf.MOTION, rank=2)
    sd = lf.diffusers_layout(pairs)
    sd["transformer.blocks.7.attn1.to_q.lora_A.weight"] = torch.zeros(2, 24)
    sd["transformer.blocks.7.attn1.to_q.lora_B.weight"] = torch.zeros(24, 2)
    canonical, _ = lora_formats.to_canonical(sd)
    with pytest.raises(InputError, match=r"does not have: transformer\.blocks\.7\.attn1\.to_q"):
        lora_formats.check_against(canonical, transformer, "tiny")


def test_wrong_sizes_are_refused(transformer):
    sd = {"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, 5120),
          "transformer.blocks.0.attn1.to_q.lora_B.weight": torch.zeros(5120, 2)}
    with pytest.raises(InputError, match="does not fit"):
        lora_formats.check_against(sd, transformer, "tiny")


class _Boom:
    """Unpickling this runs code: it must never happen."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".ckpt", ".pth", ".safetensors"])
def test_pickles_are_never_unpickled(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps(_Boom(marker)))
    with pytest.raises(InputError, match="pickle"):
        lora_formats.read_safetensors(path)
    assert not marker.exists()


def test_torch_save_zip_renamed_to_safetensors_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    torch.save({"a": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="pickle"):
        lora_formats.read_safetensors(path)


def test_truncated_safetensors_is_refused(tmp_path, transformer):
    path = lf.save(lf.diffusers_layout(lf.random_lora(transformer, lf.MOTION)), tmp_path / "x.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(InputError, match="truncated or corrupt"):
        lora_formats.read_safetensors(path)


def test_comfyui_export_round_trips(transformer):
    pairs = lf.random_lora(transformer, lf.STYLE + lf.MOTION, rank=4, seed=5)
    canonical, _ = lora_formats.to_canonical(lf.diffusers_layout(pairs))
    exported = lora_formats.to_comfyui(canonical)
    assert "diffusion_model.blocks.0.cross_attn.k_img.lora_down.weight" in exported
    assert "diffusion_model.blocks.1.self_attn.o.alpha" in exported
    again, layout = lora_formats.to_canonical(exported)
    assert layout == "comfyui"
    _close(lf.canonical_delta(again), lf.canonical_delta(canonical))
