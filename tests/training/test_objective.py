from __future__ import annotations

import torch

from cinescene.training.objective import TimestepSampler, flow_matching_loss


def test_sampler_covers_the_whole_schedule_and_shifts_it():
    sampler = TimestepSampler(shift=3.0)
    timesteps, sigmas = sampler(20000, torch.Generator().manual_seed(0))
    assert torch.allclose(sigmas, timesteps / 1000)
    assert sigmas.max() <= 1.0 and sigmas.min() > 0
    # shift 3 pushes mass toward high noise: the median sigma of U(0,1) moves from 0.5 to 0.75
    assert abs(sigmas.median().item() - 0.75) < 0.02
    assert sampler.timesteps.shape == sampler.sigmas.shape == (1000,)


def test_loss_is_mse_to_the_velocity():
    class Oracle(torch.nn.Module):
        """Predicts noise - x0 exactly, from what the objective feeds a transformer."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, hidden_states, timestep, encoder_hidden_states, encoder_hidden_states_image, return_dict):
            noisy, sigma = hidden_states[:, :2], (timestep / 1000).view(-1, 1, 1, 1, 1)
            x0 = batch["latents"]
            return ((noisy - (1 - sigma) * x0) / sigma - x0 + self.w,)

    batch = {"latents": torch.randn(1, 2, 1, 2, 2), "condition": torch.zeros(1, 3, 1, 2, 2),
             "prompt_embeds": torch.zeros(1, 4, 8), "image_embeds": torch.zeros(1, 2, 8)}
    loss = flow_matching_loss(Oracle(), batch, TimestepSampler(3.0), torch.Generator().manual_seed(1))
    assert loss.item() < 1e-8
