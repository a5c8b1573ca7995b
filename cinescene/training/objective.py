"""Wan's flow-matching training objective, with the I2V conditioning from the cache.

noisy = (1 - sigma) * x0 + sigma * noise, target = noise - x0, and the
transformer sees [noisy, mask + first-frame latents] on its 36 input channels,
the prompt embedding, and the CLIP embedding of the first frame: the same
inputs WanImageToVideoPipeline feeds it at sampling time.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class TimestepSampler:
    """Draw (timestep, sigma) pairs from the shifted flow-matching schedule of diffusers' Euler scheduler."""

    def __init__(self, shift: float, sampling: str = "uniform", num_train_timesteps: int = 1000) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=num_train_timesteps, shift=shift)
        # Before set_timesteps both tables have one entry per training timestep (sigma = t / 1000).
        self.timesteps = scheduler.timesteps.float()  # descending, shifted
        self.sigmas = scheduler.sigmas.float()
        self.sampling = sampling
        self.num_train_timesteps = num_train_timesteps

    def __call__(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        from diffusers.training_utils import compute_density_for_timestep_sampling

        u = compute_density_for_timestep_sampling(self.sampling, batch, logit_mean=0.0, logit_std=1.0,
                                                  generator=generator)
        index = (u * self.num_train_timesteps).long().clamp(0, self.num_train_timesteps - 1)
        return self.timesteps[index], self.sigmas[index]


def flow_matching_loss(transformer: Any, batch: dict[str, torch.Tensor], sampler: TimestepSampler,
                       generator: torch.Generator) -> torch.Tensor:
    """MSE between the transformer's velocity and noise - x0 at a sampled timestep."""
    x0 = batch["latents"]
    device, dtype = x0.device, x0.dtype
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(device, dtype)
    timesteps, sigmas = sampler(x0.shape[0], generator)
    sigma = sigmas.view(-1, 1, 1, 1, 1).to(device, dtype)
    noisy = (1.0 - sigma) * x0 + sigma * noise
    model_dtype = next(p.dtype for p in transformer.parameters() if p.is_floating_point())
    hidden = torch.cat([noisy, batch["condition"]], dim=1).to(model_dtype)
    prediction = transformer(
        hidden_states=hidden,
        timestep=timesteps.to(device),
        encoder_hidden_states=batch["prompt_embeds"].to(model_dtype),
        encoder_hidden_states_image=batch["image_embeds"].to(model_dtype),
        return_dict=False,
    )[0]
    return F.mse_loss(prediction.float(), (noise - x0).float())
