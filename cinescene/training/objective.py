"""Wan's flow-matching training objective, with the image conditioning from the cache.

noisy = (1 - sigma) * x0 + sigma * noise, target = noise - x0, and the transformer sees what
WanImageToVideoPipeline feeds it at sampling time:

* Wan2.1 I2V and Wan2.2 I2V A14B: [noisy, mask + first-frame latents] on 36 input channels, the prompt
  embedding, and (Wan2.1) the CLIP embedding of the first frame.
* Wan2.2 TI2V-5B (``expand_timesteps``): the first frame's clean latents written over the noisy ones where
  the cached ``first_frame_mask`` is 0, with timestep 0 on those tokens and t on the rest. The pipeline
  overwrites that frame after every step, so its prediction is never used: the loss leaves it out.

A two-expert model trains each expert on its own side of the boundary (``TimestepSampler``'s range).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

MAX_DRAWS = 1000  # rounds of rejection sampling before a range is declared unreachable


class TimestepSampler:
    """Draw (timestep, sigma) pairs from the shifted flow-matching schedule of diffusers' Euler scheduler.

    ``timestep_range`` (low, high): only timesteps with low <= t < high, for an expert that denoises only
    those (Wan2.2: the high-noise expert t >= boundary, the low-noise one t < boundary, as the pipeline
    switches at ``t >= boundary_ratio * num_train_timesteps``). Out-of-range draws are rejected and drawn
    again, so the shape of the distribution inside the range is kept: musubi-tuner's
    ``--min_timestep/--max_timestep`` with ``--preserve_distribution_shape``, which its Wan2.2 guide
    recommends for training one expert (docs/wan.md, "Recommended Min/Max Timestep Settings for Wan2.2").
    """

    def __init__(self, shift: float, sampling: str = "uniform", num_train_timesteps: int = 1000,
                 timestep_range: tuple[float, float] | None = None) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=num_train_timesteps, shift=shift)
        # Before set_timesteps both tables have one entry per training timestep (sigma = t / 1000).
        self.timesteps = scheduler.timesteps.float()  # descending, shifted
        self.sigmas = scheduler.sigmas.float()
        self.sampling = sampling
        self.num_train_timesteps = num_train_timesteps
        self.timestep_range = timestep_range
        if timestep_range is not None:
            low, high = timestep_range
            if not ((self.timesteps >= low) & (self.timesteps < high)).any():
                raise ValueError(f"no training timestep of the shifted schedule lies in [{low}, {high})")

    def _draw(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        from diffusers.training_utils import compute_density_for_timestep_sampling

        u = compute_density_for_timestep_sampling(self.sampling, batch, logit_mean=0.0, logit_std=1.0,
                                                  generator=generator)
        return (u * self.num_train_timesteps).long().clamp(0, self.num_train_timesteps - 1)

    def __call__(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.timestep_range is None:
            index = self._draw(batch, generator)
            return self.timesteps[index], self.sigmas[index]
        low, high = self.timestep_range
        kept: list[torch.Tensor] = []
        for _ in range(MAX_DRAWS):
            index = self._draw(batch, generator)
            t = self.timesteps[index]
            kept += list(index[(t >= low) & (t < high)])
            if len(kept) >= batch:
                index = torch.stack(kept[:batch])
                return self.timesteps[index], self.sigmas[index]
        raise RuntimeError(f"{MAX_DRAWS} rounds drew too few timesteps in [{low}, {high}): the range is too narrow "
                           "for this shift and sampling")


def expert_range(expert: str, boundary_ratio: float | None, num_train_timesteps: int = 1000
                 ) -> tuple[float, float] | None:
    """The timesteps an expert denoises: [boundary, inf) for high noise, [0, boundary) for low, all otherwise."""
    if boundary_ratio is None or expert not in ("high_noise", "low_noise"):
        return None
    boundary = boundary_ratio * num_train_timesteps
    return (boundary, math.inf) if expert == "high_noise" else (0.0, boundary)


def flow_matching_loss(transformer: Any, batch: dict[str, torch.Tensor], sampler: TimestepSampler,
                       generator: torch.Generator, patch: tuple[int, int, int] = (1, 2, 2)) -> torch.Tensor:
    """MSE between the transformer's velocity and noise - x0 at a sampled timestep.

    ``patch``: the transformer's patch size, which groups a TI2V mask into per-token timesteps.
    """
    x0 = batch["latents"]
    device, dtype = x0.device, x0.dtype
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(device, dtype)
    timesteps, sigmas = sampler(x0.shape[0], generator)
    sigma = sigmas.view(-1, 1, 1, 1, 1).to(device, dtype)
    noisy = (1.0 - sigma) * x0 + sigma * noise
    model_dtype = next(p.dtype for p in transformer.parameters() if p.is_floating_point())
    mask = batch.get("first_frame_mask")
    if mask is None:
        hidden = torch.cat([noisy, batch["condition"]], dim=1)
        timestep = timesteps.to(device)
    else:
        # As WanImageToVideoPipeline with expand_timesteps: clean first-frame latents where the mask is 0,
        # and one timestep per token (the mask sampled at the patch grid, times t).
        mask = mask.to(device, dtype)
        hidden = (1 - mask) * batch["condition"].to(device, dtype) + mask * noisy
        grid = mask[:, 0, ::patch[0], ::patch[1], ::patch[2]].flatten(1)
        timestep = grid * timesteps.to(device, dtype).view(-1, 1)
    image = batch.get("image_embeds")
    prediction = transformer(
        hidden_states=hidden.to(model_dtype),
        timestep=timestep,
        encoder_hidden_states=batch["prompt_embeds"].to(model_dtype),
        encoder_hidden_states_image=image.to(model_dtype) if image is not None else None,
        return_dict=False,
    )[0]
    target = (noise - x0).float()
    if mask is None:
        return F.mse_loss(prediction.float(), target)
    weight = mask.float().expand_as(target)
    return ((prediction.float() - target) ** 2 * weight).sum() / weight.sum().clamp(min=1.0)
