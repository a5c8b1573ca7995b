"""Wan2.2's two experts: each denoises its side of the boundary, and the record says which ran when."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cinescene import experts, loading, media, sampler
from cinescene.settings import TINY_TI2V, TINY_WAN22, ModelSpec, SampleSettings


@pytest.fixture(scope="module")
def wan22():
    return loading.load_model(ModelSpec(model=TINY_WAN22))


@pytest.fixture(scope="module")
def image(still):
    return media.load_image(still)


def shot(**changes):
    values = dict(prompt="a slow dolly-in on a lighthouse at dusk", steps=8, frames=5, height=32, width=48,
                  preset="preview")
    return SampleSettings(**{**values, **changes})


def forward_calls(pipe):
    """Hooks of the test's own on both experts: (expert, timestep) per forward call."""
    calls, handles = [], []
    for name, module in (("high_noise", pipe.transformer), ("low_noise", pipe.transformer_2)):
        handles.append(module.register_forward_pre_hook(
            lambda _m, _a, kw, name=name: calls.append((name, float(kw["timestep"].max()))), with_kwargs=True))
    return calls, handles


def expected_experts(pipe, steps, shift, boundary_ratio):
    """The expert of each step, from the scheduler's own timesteps: high noise while t >= ratio * 1000."""
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, flow_shift=shift)
    scheduler.set_timesteps(steps)
    boundary = boundary_ratio * scheduler.config.num_train_timesteps
    return [("high_noise" if t >= boundary else "low_noise", float(t)) for t in scheduler.timesteps]


@pytest.mark.parametrize("boundary", [None, 0.5])
def test_the_expert_switch_happens_at_the_boundary(wan22, image, boundary):
    calls, handles = forward_calls(wan22.pipe)
    try:
        result = sampler.sample(wan22, image, shot(boundary=boundary))
    finally:
        for handle in handles:
            handle.remove()
    ratio = boundary if boundary is not None else 0.9  # the model's own
    expected = expected_experts(wan22.pipe, 8, result.settings.shift, ratio)
    # guidance 3.5 > 1: a conditional and an unconditional forward per step, by the step's expert.
    assert calls == [c for c in expected for _ in range(2)]
    high = sum(1 for name, _ in expected if name == "high_noise")
    assert 0 < high < 8, "the test needs both experts to run"
    assert result.experts["high_noise"]["calls"] == 2 * high and result.experts["low_noise"]["steps"] == 8 - high
    assert result.experts["low_noise"]["first_timestep"] < ratio * 1000 <= result.experts["high_noise"]["last_timestep"]


def test_each_expert_gets_its_own_guidance(wan22, image):
    with wan22.lock:
        kwargs = sampler.pipeline_kwargs(wan22, image, sampler.resolve_settings(
            sampler.fit_to_model(wan22, shot(guidance=4.0, guidance_2=2.0)), image.size))
    assert kwargs["guidance_scale"] == 4.0 and kwargs["guidance_scale_2"] == 2.0
    a = sampler.sample(wan22, image, shot(guidance=4.0, guidance_2=2.0)).frames
    b = sampler.sample(wan22, image, shot(guidance=4.0, guidance_2=6.0)).frames
    assert not (a == b).all(), "the low-noise expert's guidance must change the low-noise steps"
    default = sampler.sample(wan22, image, shot(guidance=4.0))
    assert default.settings.guidance_2 == 3.5  # the model's (Wan2.2 sample_guide_scale), not the first guidance


def test_the_record_says_which_experts_ran(wan22, image, tmp_path):
    result = sampler.sample_to_file(wan22, image, shot(), tmp_path / "shot.mp4")
    record = result.record
    assert record["model"]["family"] == "wan2.2-i2v-a14b" and record["model"]["experts"] == ["high_noise", "low_noise"]
    assert record["model"]["boundary_ratio"] == 0.9
    assert set(record["experts"]) == {"high_noise", "low_noise"}
    assert record["experts"]["high_noise"]["steps"] + record["experts"]["low_noise"]["steps"] == 8
    assert record["settings"]["guidance_2"] == 3.5 and record["settings"]["boundary"] == 0.9


def test_ti2v_writes_the_first_frame_into_the_latents(image):
    """TI2V: no mask channels; the transformer sees timestep 0 on the first latent frame's tokens."""
    model = loading.load_model(ModelSpec(model=TINY_TI2V))
    seen = []
    handle = model.pipe.transformer.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append((kw["hidden_states"].shape, kw["timestep"].clone())), with_kwargs=True)
    try:
        result = sampler.sample(model, image, shot(height=64, width=96, frames=9, steps=2))
    finally:
        handle.remove()
    assert result.frames.shape == (9, 64, 96, 3) and set(result.experts) == {"transformer"}
    shape, timestep = seen[0]
    assert shape[1] == 48  # the Wan2.2 VAE's latent channels, nothing concatenated
    tokens_per_frame = (64 // 32) * (96 // 32)  # latent 4 x 6, patches of 2 x 2
    assert timestep.shape == (1, 3 * tokens_per_frame)  # (9 - 1) / 4 + 1 = 3 latent frames
    assert (timestep[0, :tokens_per_frame] == 0).all() and (timestep[0, tokens_per_frame:] == 999).all()


def test_what_a_model_cannot_do_is_refused(wan22, image):
    from cinescene.errors import InputError

    one = loading.load_model(ModelSpec(model=TINY_TI2V))
    with pytest.raises(InputError, match="two-expert models"):
        sampler.sample(one, image, shot(guidance_2=2.0))
    with pytest.raises(InputError, match="multiple of 32"):
        sampler.sample(one, image, shot(width=48))
    with pytest.raises(InputError, match="two experts"):
        sampler.sample(wan22, image, shot(cache="first-block"))
    with pytest.raises(InputError, match="boundary must be between 0 and 1"):
        sampler.validate_settings(dataclasses.replace(shot(), boundary=1.5))


def test_expert_names_and_modules(wan22, tiny_model):
    assert list(experts.experts(wan22.pipe)) == ["high_noise", "low_noise"]
    assert experts.expert_module(wan22.pipe, "low_noise") is wan22.pipe.transformer_2
    assert experts.boundary_timestep(wan22.pipe) == pytest.approx(900.0)
    assert list(experts.experts(tiny_model.pipe)) == ["transformer"] and experts.boundary_timestep(tiny_model.pipe) is None
    with pytest.raises(ValueError, match="no 'low_noise' expert"):
        experts.expert_module(tiny_model.pipe, "low_noise")
    assert isinstance(experts.expert_module(tiny_model.pipe, "transformer"), torch.nn.Module)
