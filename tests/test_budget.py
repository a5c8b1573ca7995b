"""The plan command against arithmetic done by hand for the real Wan2.1 I2V 14B and Wan2.2 configs."""

from __future__ import annotations

import json

import pytest

from cinescene import budget, cli
from cinescene.errors import InputError
from cinescene.settings import HUB_480P, HUB_720P, HUB_WAN22_I2V, HUB_WAN22_TI2V


def hand_count_transformer(d=5120, ffn=13824, layers=40, text=4096, image=1280, freq=256, in_ch=36, out_ch=16):
    """WanTransformer3DModel's parameters, layer by layer, from diffusers' module definitions."""
    linear = lambda i, o: i * o + o  # noqa: E731
    attn1 = 4 * linear(d, d) + 2 * d  # q, k, v, out + RMS norms on q and k
    attn2 = 4 * linear(d, d) + 2 * linear(d, d) + 3 * d  # + image k/v projections and their norm
    ffn_params = linear(d, ffn) + linear(ffn, d)
    block = attn1 + attn2 + ffn_params + 2 * d + 6 * d  # affine cross-attn norm + modulation table
    top = (in_ch * d * 1 * 2 * 2 + d)  # patch embedding
    top += linear(freq, d) + linear(d, d) + linear(d, 6 * d)  # time embedding and projection
    top += linear(text, d) + linear(d, d)  # text projection
    top += 2 * image + linear(image, image) + linear(image, d) + 2 * d  # image projection with its norms
    top += linear(d, out_ch * 4) + 2 * d  # output projection + modulation table
    return block * layers + top, block


@pytest.mark.parametrize("model, height, width, tokens", [(HUB_480P, 480, 832, 32_760), (HUB_720P, 720, 1280, 75_600)])
def test_tokens_and_parameters_match_hand_arithmetic(model, height, width, tokens):
    result = budget.make_plan(model, height, width, 81)
    total, block = hand_count_transformer()
    assert result.tokens == tokens
    assert (21 * (height // 16) * (width // 16)) == tokens
    assert result.sizes.transformer == total == 16_394_878_784
    assert result.sizes.block == block
    assert result.sizes.text_encoder == 5_680_910_336  # umt5-xxl encoder: 24 x (4 x 4096^2 + 3 x 4096 x 10240) + embeddings
    assert result.sizes.image_tokens == 257


def test_flops_follow_the_formula():
    result = budget.make_plan(HUB_480P, 480, 832, 81)
    n, d, f, c = 32_760, 5120, 13824, 512 + 257
    per_block = 12 * n * d * d + 4 * n * n * d + 4 * c * d * d + 4 * n * c * d + 4 * n * d * f
    assert result.flops_forward == pytest.approx(40 * per_block)
    assert "32,760 tokens" in budget.render(result)


def test_memory_modes_are_ordered_and_fp8_halves_the_transformer():
    result = budget.make_plan(HUB_480P, 480, 832, 81, train_frames=33)
    total = {mode: sum(parts.values()) for mode, parts in result.memory.items()}
    assert total["none"] > total["fp8"] > total["fp8+model-offload"] > total["group-offload"] > total["group-offload-leaf"]
    assert result.memory["fp8"]["transformer (fp8 storage)"] * 2 == result.memory["none"]["transformer"]
    assert set(result.training) == {"none", "fp8"} and sum(result.training["fp8"].values()) < 32e9
    assert budget.auto_memory_mode(HUB_480P, 80e9) == "none"
    assert budget.auto_memory_mode(HUB_480P, 24e9) == "group-offload"
    assert budget.auto_memory_mode(HUB_480P, 31e9) == "fp8+model-offload"


def test_plan_command(capsys):
    assert cli.main(["plan", "--model", HUB_720P, "--height", "720", "--width", "1280", "--train"]) == 0
    out = capsys.readouterr().out
    assert "75,600 tokens" in out and "16,394,878,784" in out and "LoRA training" in out
    assert cli.main(["plan", "--model", "tiny", "--height", "64", "--width", "64", "--frames", "9", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tokens"] == 3 * 4 * 4


def test_full_finetuning_estimate_counts_fp32_master_weights():
    result = budget.make_plan(HUB_480P, 480, 832, 81, train_frames=33, method="full")
    p = result.sizes.transformer
    one, sharded = result.training["full, 1 GPU"], result.training["full, FSDP x8"]
    # fp32 weight, fp32 gradient and two fp32 AdamW moments: 16 bytes a parameter, an eighth of it per GPU.
    assert one["fp32 master weights"] + one["fp32 gradients"] + one["AdamW moments (fp32)"] == 16 * p
    assert sum(v for k, v in sharded.items() if "/ 8" in k) == 2 * p
    assert sum(one.values()) > 250e9 and 30e9 < sum(sharded.values()) < 80e9
    text = budget.render(result)
    assert "full fine-tuning (per GPU)" in text and "fp32 master weights" in text


def hand_count_wan22(d, ffn, layers, in_ch, out_ch, text=4096, freq=256):
    """A Wan2.2 transformer by hand: Wan2.1's formula without the image cross-attention and image embedder."""
    linear = lambda i, o: i * o + o  # noqa: E731
    attn = 4 * linear(d, d) + 2 * d  # q, k, v, out + RMS norms on q and k (self- and cross-attention alike)
    block = 2 * attn + linear(d, ffn) + linear(ffn, d) + 2 * d + 6 * d  # affine cross-attn norm + modulation
    top = in_ch * d * 1 * 2 * 2 + d  # patch embedding
    top += linear(freq, d) + linear(d, d) + linear(d, 6 * d) + linear(text, d) + linear(d, d)
    top += linear(d, out_ch * 4) + 2 * d
    return block * layers + top, block


def test_wan22_i2v_a14b_has_two_14b_experts():
    result = budget.make_plan(HUB_WAN22_I2V, 720, 1280, 81)
    s = result.sizes
    total, block = hand_count_wan22(5120, 13824, 40, 36, 16)
    assert s.transformer == s.transformer_2 == total == 14_288_901_184 and s.block == block
    # Wan2.2's README: "Each expert model has about 14B parameters ... only 14B active parameters per step".
    assert s.experts == 2 and s.transformers == 2 * total and round(total / 1e9) == 14
    assert s.image_encoder == 0 and s.image_tokens == 0 and s.text_encoder == 5_680_910_336
    assert result.tokens == 75_600  # the Wan2.1 VAE's 4x8x8 strides
    n, d, f, c = 75_600, 5120, 13824, 512  # no CLIP tokens in cross-attention
    assert result.flops_forward == pytest.approx(40 * (12 * n * d * d + 4 * n * n * d + 4 * c * d * d + 4 * n * c * d
                                                       + 4 * n * d * f))
    # Resident, both experts are stored; with model offload one is on the GPU at a time.
    assert result.memory["none"]["transformer"] == 2 * 2 * total
    assert result.memory["model-offload"]["largest component at a time"] == 2 * total


def test_wan22_ti2v_5b_is_5b_over_the_wan22_vae():
    result = budget.make_plan(HUB_WAN22_TI2V, 704, 1280, 121)
    s = result.sizes
    total, _ = hand_count_wan22(3072, 14336, 30, 48, 48)
    assert s.transformer == total == 4_999_787_712 and s.experts == 1 and s.transformer_2 == 0
    assert round(total / 1e9) == 5  # "a 5B dense model" (Wan2.2 README)
    assert (s.spatial, s.temporal) == (16, 4)
    assert result.tokens == 31 * (704 // 32) * (1280 // 32) == 27_280  # 4x16x16 VAE, then 2x2 patches
    with pytest.raises(InputError, match="multiples of 32"):
        budget.make_plan(HUB_WAN22_TI2V, 720, 1280, 121)


def test_plan_command_for_wan22_uses_the_models_defaults(capsys):
    assert cli.main(["plan", "--model", HUB_WAN22_TI2V, "--train"]) == 0
    out = capsys.readouterr().out
    assert "at 1280x704, 121 frames, 50 steps" in out and "4,999,787,712" in out and "LoRA training" in out
    assert cli.main(["plan", "--model", HUB_WAN22_I2V, "--train"]) == 0
    out = capsys.readouterr().out
    assert "at 1280x720, 81 frames, 40 steps" in out and out.count("14,288,901,184") == 2
    assert "one expert at a time" in out and "both experts (bf16)" in out
    assert cli.main(["plan", "--model", HUB_WAN22_I2V, "--train", "--method", "full"]) == 2
    assert "two experts" in capsys.readouterr().err
