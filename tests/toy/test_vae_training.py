"""The toy VAE's stage: the inflation it starts from, and the clamp it trains through."""

from __future__ import annotations

import numpy as np
import torch

from cinescene import architecture
from cinescene.toy import footage, recipe, vae_training


def test_an_inflated_vae_codes_a_still_clip_frame_by_frame():
    """After inflate_temporal a fresh VAE codes each frame alone: every frame after the first of a still clip is one.

    (The first frame takes the causal first-chunk path, whose residual shortcut sees padding: it differs.)
    """
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(**architecture.TOY_VAE)
    clip = recipe.to_pixels(footage.render_clip(footage.random_scene(np.random.default_rng(1)),
                                                    "neutral", "static", 9, 32, 48)[None])
    with torch.no_grad():
        before = vae.decode(vae.encode(clip).latent_dist.mode()).sample
        vae_training.inflate_temporal(vae)
        after = vae.decode(vae.encode(clip).latent_dist.mode()).sample
    assert (before[:, :, 2:] - before[:, :, 1:2]).abs().max() > 1e-2  # random temporal taps: frames differ
    assert torch.allclose(after[:, :, 2:], after[:, :, 1:2].expand_as(after[:, :, 2:]), atol=1e-5)
