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


def _shapes(transformer):
    return lf.linear_shapes(transformer, blocks_only=False)


def _only_modules(canonical):
    return {k.removeprefix("transformer.").split(".lora_")[0] for k in canonical}


# musubi-tuner users pick layers with include/exclude patterns; diffusers' musubi converter wants them all.
SUBSETS = {"cross-attention": lf.STYLE, "self-attention": lf.MOTION, "image-key-only": ["attn2.add_k_proj"],
           "ffn-out-only": ["ffn.net.2"]}


@pytest.mark.parametrize("subset", SUBSETS)
@pytest.mark.parametrize("build, alpha", [
    (lambda p: lf.kohya_layout(p, alpha=8.0), 8.0),
    (lambda p: lf.comfyui_layout(p, alpha=2.0), 2.0),
    (lambda p: lf.diffsynth_layout(p), None),
], ids=["musubi-kohya", "comfyui", "diffsynth"])
def test_any_subset_of_layers_converts_exactly(transformer, subset, build, alpha):
    pairs = lf.random_lora(transformer, SUBSETS[subset], rank=4, seed=11)
    canonical, _ = lora_formats.to_canonical(build(pairs))
    assert _only_modules(canonical) == set(pairs)  # the zero layers that completed the converter's input are gone
    _close(lf.canonical_delta(canonical), lf.expected_delta(pairs, alpha))


def test_musubi_file_of_later_blocks_only(transformer):
    pairs = {m: ab for m, ab in lf.random_lora(transformer, lf.MOTION, rank=4, seed=12).items()
             if m.startswith("blocks.1.")}
    canonical, layout = lora_formats.to_canonical(lf.kohya_layout(pairs, alpha=1.0))
    assert layout == "musubi-kohya" and _only_modules(canonical) == set(pairs)
    _close(lf.canonical_delta(canonical), lf.expected_delta(pairs, 1.0))


def test_unknown_musubi_layer_is_named():
    with pytest.raises(InputError, match="lora_unet_blocks_0_self_attn_norm_q.lora_down.weight"):
        lora_formats.to_canonical({"lora_unet_blocks_0_self_attn_norm_q.lora_down.weight": torch.zeros(2, 24),
                                   "lora_unet_blocks_0_self_attn_norm_q.lora_up.weight": torch.zeros(24, 2)})


def test_published_speed_lora_converts_exactly_with_biases(transformer):
    sd, expected = lf.published_speed_lora(transformer)
    converted = lora_formats.convert(sd, linear_shapes=_shapes(transformer))
    assert converted.layout == "comfyui" and converted.dropped == []
    c = converted.state_dict
    assert _only_modules(c) == set(expected)
    assert {v.shape[0] for k, v in c.items() if ".lora_A." in k} == {64}
    deltas = lf.canonical_delta(c)
    for module, (weight, bias) in expected.items():
        torch.testing.assert_close(deltas[module], weight, rtol=1e-5, atol=1e-6)
        assert torch.equal(c[f"transformer.{module}.lora_B.bias"], bias)
    assert any("of 1 linear layers" in n for n in converted.notes)  # head.head.diff, held as exact factors
    assert any("that were all zeros" in n for n in converted.notes)
    lora_formats.check_against(c, transformer, "tiny")


def test_full_deltas_a_lora_cannot_hold_are_refused_by_name_or_dropped_on_request(transformer):
    sd, _ = lf.published_speed_lora(transformer, full_deltas=0.01)
    with pytest.raises(InputError, match=r"full deltas a LoRA cannot hold.*blocks\.0\.diff_m.*--drop-full-deltas"):
        lora_formats.convert(sd, linear_shapes=_shapes(transformer))
    dropped = lora_formats.convert(sd, linear_shapes=_shapes(transformer), drop_full_deltas=True)
    non_linear = {k.removeprefix("diffusion_model.") for k in sd if not any(
        k.endswith(s) for s in (".lora_down.weight", ".lora_up.weight")) and not k.endswith(".diff_b")
        or ".norm" in k or "img_emb.proj.0" in k or "img_emb.proj.4" in k}
    non_linear -= {"head.head.diff"}  # a linear layer's: held exactly
    assert set(dropped.dropped) == non_linear
    assert any("left out on request" in n for n in dropped.notes)
    zeros = lora_formats.convert(lf.published_speed_lora(transformer)[0], linear_shapes=_shapes(transformer))
    _close(dropped.state_dict, zeros.state_dict)


def test_full_weight_deltas_of_linear_layers_become_exact_lora(transformer):
    pairs = lf.random_lora(transformer, ["attn1.to_q", "ffn.net.0.proj"], rank=4, seed=13)
    gen = torch.Generator().manual_seed(3)
    q_delta = torch.randn(24, 24, generator=gen)  # alone
    ffn_delta = torch.randn(32, 24, generator=gen)  # beside the layer's LoRA, with alpha
    sd = lf.comfyui_layout({"blocks.1.ffn.net.0.proj": pairs["blocks.1.ffn.net.0.proj"]}, alpha=2.0)
    sd["diffusion_model.blocks.0.self_attn.q.diff"] = q_delta
    sd["diffusion_model.blocks.1.ffn.0.diff"] = ffn_delta
    canonical = lora_formats.convert(sd).state_dict
    deltas = lf.canonical_delta(canonical)
    assert _only_modules(canonical) == {"blocks.0.attn1.to_q", "blocks.1.ffn.net.0.proj"}
    torch.testing.assert_close(deltas["blocks.0.attn1.to_q"], q_delta, rtol=0, atol=0)
    a, b = pairs["blocks.1.ffn.net.0.proj"]
    torch.testing.assert_close(deltas["blocks.1.ffn.net.0.proj"], b @ a * 0.5 + ffn_delta, rtol=1e-5, atol=1e-6)
    big = {"diffusion_model.blocks.0.self_attn.q.diff": torch.ones(70, 80)}
    with pytest.raises(InputError, match=r"too large.*blocks\.0\.self_attn\.q\.diff \(70x80 needs rank 70\)"):
        lora_formats.convert(big)


def test_bias_delta_without_weights_gets_zero_weights(transformer):
    bias = torch.arange(144, dtype=torch.float32) / 100
    sd = {"diffusion_model.time_projection.1.diff_b": bias}
    with pytest.raises(InputError, match="size is unknown"):
        lora_formats.convert(sd)
    canonical = lora_formats.convert(sd, linear_shapes=_shapes(transformer)).state_dict
    assert torch.equal(canonical["transformer.condition_embedder.time_proj.lora_B.bias"], bias)
    assert not canonical["transformer.condition_embedder.time_proj.lora_A.weight"].any()
    lora_formats.check_against(canonical, transformer, "tiny")


def test_inf_and_nan_are_refused(transformer):
    sd = lf.diffusers_layout(lf.random_lora(transformer, lf.MOTION, rank=2))
    sd["transformer.blocks.0.attn1.to_q.lora_B.weight"][0, 0] = float("inf")
    with pytest.raises(InputError, match=r"inf or nan.*blocks\.0\.attn1\.to_q\.lora_B\.weight"):
        lora_formats.convert(sd)


def test_alpha_from_metadata_scales_the_bias_too(transformer):
    pairs = lf.random_lora(transformer, ["attn1.to_k"], rank=4, seed=14)
    sd = lf.diffusers_layout(pairs)
    bias = torch.randn(24, generator=torch.Generator().manual_seed(4))
    sd["transformer.blocks.0.attn1.to_k.lora_B.bias"] = bias
    meta = {"lora_adapter_metadata": json.dumps({"transformer.r": 4, "transformer.lora_alpha": 12})}
    canonical, _ = lora_formats.to_canonical(sd, meta)
    # peft computes lora_B(lora_A(x)) * alpha / r: the bias is scaled with the weights.
    torch.testing.assert_close(canonical["transformer.blocks.0.attn1.to_k.lora_B.bias"], bias * 3)
    _close(lf.canonical_delta(canonical), lf.expected_delta(pairs, alpha=12.0))


def test_comfyui_export_keeps_biases_and_every_speed_layer(transformer):
    sd, expected = lf.published_speed_lora(transformer, seed=6)
    canonical = lora_formats.convert(sd, linear_shapes=_shapes(transformer)).state_dict
    exported = lora_formats.to_comfyui(canonical)
    assert "diffusion_model.head.head.diff_b" in exported and "diffusion_model.img_emb.proj.3.lora_up.weight" in exported
    again, layout = lora_formats.to_canonical(exported)
    assert layout == "comfyui"
    _close(lf.canonical_delta(again), lf.canonical_delta(canonical))
    assert all(torch.equal(again[k], canonical[k]) for k in canonical if k.endswith(".bias"))


def test_layers_outside_the_blocks_with_alpha(transformer):
    # diffusers' converter reads alpha only inside the blocks.
    gen = torch.Generator().manual_seed(15)
    shapes = _shapes(transformer)
    pairs = {m: (torch.randn(4, shapes[m][0], generator=gen), torch.randn(shapes[m][1], 4, generator=gen))
             for m in ("proj_out", "condition_embedder.time_proj", "condition_embedder.image_embedder.ff.net.2")}
    canonical, _ = lora_formats.to_canonical(lf.comfyui_layout(pairs, alpha=2.0))
    _close(lf.canonical_delta(canonical), lf.expected_delta(pairs, 2.0))


def test_file_of_nothing_but_zero_deltas_is_refused():
    with pytest.raises(InputError, match="holds no LoRA weights"):
        lora_formats.convert({"diffusion_model.blocks.0.norm3.diff": torch.zeros(24),
                              "diffusion_model.blocks.0.diff_m": torch.zeros(1, 6, 24)})
