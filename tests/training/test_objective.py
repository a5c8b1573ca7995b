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


def test_an_experts_timesteps_stay_on_its_side_of_the_boundary():
    """Wan2.2: t >= 900 for the high-noise expert, t < 900 for the low-noise one, as the pipeline switches."""
    from cinescene.training.objective import expert_range

    assert expert_range("high_noise", 0.9) == (900.0, float("inf"))
    assert expert_range("low_noise", 0.9) == (0.0, 900.0)
    assert expert_range("transformer", None) is None and expert_range("high_noise", None) is None
    generator = torch.Generator().manual_seed(0)
    high, _ = TimestepSampler(3.0, timestep_range=expert_range("high_noise", 0.9))(4000, generator)
    low, low_sigmas = TimestepSampler(3.0, timestep_range=expert_range("low_noise", 0.9))(4000, generator)
    assert high.min() >= 900 and low.max() < 900 and torch.allclose(low_sigmas, low / 1000)
    # Rejection keeps the shape inside the range: the share of low draws under t = 500 is what the full
    # schedule gives among its draws under 900.
    full, _ = TimestepSampler(3.0)(40000, torch.Generator().manual_seed(1))
    expected = (full < 500).float().sum() / (full < 900).float().sum()
    assert abs((low < 500).float().mean() - expected) < 0.03


def test_a_range_no_timestep_reaches_is_refused():
    import pytest

    with pytest.raises(ValueError, match="no training timestep"):
        TimestepSampler(3.0, timestep_range=(1001.0, 2000.0))


def test_ti2v_loss_leaves_out_the_first_frame_it_is_given():
    """TI2V: clean first-frame latents in, timestep 0 on their tokens, and no loss where they are."""
    seen = {}

    class FirstFrameBlind(torch.nn.Module):
        """Right velocity on the noisy frames, nonsense on the given first frame."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, hidden_states, timestep, encoder_hidden_states, encoder_hidden_states_image, return_dict):
            seen.update(hidden=hidden_states, timestep=timestep, image=encoder_hidden_states_image)
            sigma = (timestep.max(dim=1).values / 1000).view(-1, 1, 1, 1, 1)
            x0 = batch["latents"]
            velocity = (hidden_states - (1 - sigma) * x0) / sigma - x0
            velocity[:, :, 0] = 100.0
            return (velocity + self.w,)

    x0 = torch.randn(1, 4, 3, 2, 4)
    mask = torch.ones(1, 1, 3, 2, 4)
    mask[:, :, 0] = 0
    batch = {"latents": x0, "condition": x0[:, :, :1].clone(), "first_frame_mask": mask,
             "prompt_embeds": torch.zeros(1, 4, 8)}
    loss = flow_matching_loss(FirstFrameBlind(), batch, TimestepSampler(3.0), torch.Generator().manual_seed(2))
    assert loss.item() < 1e-8
    assert torch.equal(seen["hidden"][:, :, 0], x0[:, :, 0]) and seen["image"] is None
    timestep = seen["timestep"]
    assert timestep.shape == (1, 3 * 1 * 2)  # 3 latent frames of 1 x 2 patches of 2 x 2
    assert (timestep[0, :2] == 0).all() and (timestep[0, 2:] > 0).all() and len(set(timestep[0, 2:].tolist())) == 1
