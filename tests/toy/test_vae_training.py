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


def test_calibration_folds_the_fitted_colour_map_into_the_decoder():
    """After calibrate_colours the decoder gives exactly the fitted matrix and offset applied to what it gave before."""
    from types import SimpleNamespace

    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(**architecture.TOY_VAE).eval()
    clip = recipe.to_pixels(footage.render_clip(footage.random_scene(np.random.default_rng(2)), "sepia", "pan-left",
                                                    recipe.CLIP_FRAMES, recipe.HEIGHT, recipe.WIDTH)[None])
    outputs = []
    hook = vae.decoder.register_forward_hook(lambda module, args, out: outputs.append(out))
    with torch.no_grad():
        latents = vae.encode(clip).latent_dist.mode()
        vae.decode(latents)
    hook.remove()
    before = torch.cat(outputs, 2).double()
    fit = vae_training.calibrate_colours(SimpleNamespace(vae=vae), seed=0, count=2)
    with torch.no_grad():
        after = vae.decode(latents).sample.double()
    matrix, offset = torch.tensor(fit["matrix"]).double(), torch.tensor(fit["offset"]).double()
    expected = (torch.einsum("oi,bithw->bothw", matrix, before) + offset.view(1, 3, 1, 1, 1)).clamp(-1, 1)
    # The fit is rounded to 4 decimals in the record, the folded weights are float32.
    assert (after - expected).abs().max() < 2e-3
    assert fit["mse_after"] < fit["mse_before"]
    assert (matrix - torch.eye(3)).abs().max() > 0.05 or offset.abs().max() > 0.05  # a random decoder is far off
