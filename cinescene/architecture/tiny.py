"""The small models' configs: ``tiny`` and its Wan2.2 variants (random weights, for tests), and ``toy``.

Every dimension is as small as the classes allow while the structure of the real model stays: the tiny
Wan2.1 has image cross-attention and 36 input channels; ``tiny-wan22`` has two experts without image
cross-attention, as Wan2.2 I2V A14B; ``tiny-ti2v`` has one transformer on 48 latent channels over the
Wan2.2 VAE (patchified pixels, 16x spatial stride), as Wan2.2 TI2V-5B.
"""

from __future__ import annotations

from typing import Any

from ..settings import TINY, TINY_TI2V, TINY_WAN22

TINY_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=36,  # 16 noisy latents + 4 mask + 16 first-frame latents, as in the real I2V model
    out_channels=16,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    image_dim=16,  # = TINY_IMAGE_ENCODER hidden_size
    added_kv_proj_dim=24,  # = heads x head_dim, as 5120 is in the real model
    rope_max_seq_len=1024,
)
TINY_VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
TINY_TEXT_ENCODER = dict(
    vocab_size=384, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=8
)
TINY_IMAGE_ENCODER = dict(
    hidden_size=16,
    projection_dim=16,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=32,
    patch_size=4,
)
TINY_CONFIGS = {"transformer": TINY_TRANSFORMER, "vae": TINY_VAE, "text_encoder": TINY_TEXT_ENCODER,
                "image_encoder": TINY_IMAGE_ENCODER}

# Wan2.2 I2V A14B drops the CLIP image encoder; its experts keep the 36 input channels (diffusers'
# tests/pipelines/wan/test_wan_22_image_to_video.py builds its dummy experts the same way).
TINY_WAN22_TRANSFORMER = {**TINY_TRANSFORMER, "image_dim": None, "added_kv_proj_dim": None}
TINY_WAN22_BOUNDARY = 0.9  # the real model's (Wan2.2 wan/configs/wan_i2v_A14B.py: boundary = 0.900)
TINY_WAN22_CONFIGS = {"transformer": TINY_WAN22_TRANSFORMER, "transformer_2": TINY_WAN22_TRANSFORMER,
                      "vae": TINY_VAE, "text_encoder": TINY_TEXT_ENCODER}

# The Wan2.2 VAE: 48 latent channels over 2x2-patchified pixels (12 channels), 16x spatial stride, residual
# blocks; the shape of diffusers' own dummy in the same test file, at the smallest widths.
TINY_TI2V_VAE = dict(base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                     latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                     scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True])
# No mask or first-frame channels: TI2V writes the first frame's latents into the noisy latents themselves.
TINY_TI2V_TRANSFORMER = {**TINY_WAN22_TRANSFORMER, "in_channels": 48, "out_channels": 48}
TINY_TI2V_CONFIGS = {"transformer": TINY_TI2V_TRANSFORMER, "vae": TINY_TI2V_VAE, "text_encoder": TINY_TEXT_ENCODER}

TINY_PARTS: dict[str, dict[str, dict[str, Any]]] = {TINY: TINY_CONFIGS, TINY_WAN22: TINY_WAN22_CONFIGS,
                                                     TINY_TI2V: TINY_TI2V_CONFIGS}

# Toy configs: small enough to train on two CPU cores in under 45 minutes (scripts/train_toy_model.py), large
# enough to learn toy footage at 64 x 112. The same structure as the real model: image cross-attention, 36 input
# channels, the VAE's 4x temporal and 8x spatial strides, 2x2 patches. The trained folder's own config files
# (cinescene/toy/model) are what loading reads; these are what the script builds it from.
TOY_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=36,
    out_channels=16,
    text_dim=64,  # = TOY_TEXT_ENCODER d_model
    freq_dim=256,
    ffn_dim=512,
    num_layers=6,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    image_dim=64,  # = TOY_IMAGE_ENCODER hidden_size
    added_kv_proj_dim=128,  # = heads x head_dim
    rope_max_seq_len=1024,
)
# is_residual: Wan2.2's VAE blocks (the same class), whose parameter-free shortcuts (pixels folded into channels
# and averaged down, duplicated back up) give a fresh VAE a path for colour from its first step: measured on
# held-out toy frames after 600 steps at the same settings, 17.9 dB PSNR against 15.3 dB with Wan2.1's blocks.
# The latents are Wan2.1's: 16 channels, 4x temporal and 8x spatial strides.
TOY_VAE = dict(base_dim=16, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True],
               is_residual=True)
# vocab_size: one token per word of the toy captions (toy.base_model.vocabulary; a word-level tokenizer).
TOY_TEXT_ENCODER = dict(vocab_size=40, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.0)
TOY_IMAGE_ENCODER = dict(hidden_size=64, projection_dim=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, image_size=32, patch_size=4)
TOY_CONFIGS = {"transformer": TOY_TRANSFORMER, "vae": TOY_VAE, "text_encoder": TOY_TEXT_ENCODER,
               "image_encoder": TOY_IMAGE_ENCODER}
