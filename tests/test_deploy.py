from __future__ import annotations

import re

import pytest

from cinescene import deploy
from cinescene.errors import InputError
from cinescene.settings import HUB_480P, HUB_720P, ModelDefaults, ModelSpec


def test_detect_reads_the_space_environment(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert deploy.detect() == deploy.Deployment(space_id=None, zero_gpu=False)
    monkeypatch.setenv("SPACE_ID", "crew/cinescene")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert deploy.detect() == deploy.Deployment(space_id="crew/cinescene", zero_gpu=True)


def test_a_space_allows_less_than_a_workstation():
    local = deploy.limits_for(deploy.Deployment(None, False), tiny=False)
    cpu_space = deploy.limits_for(deploy.Deployment("a/b", False), tiny=True)
    zero_gpu = deploy.limits_for(deploy.Deployment("a/b", True), tiny=False)
    assert local.train_enabled and local.train_note is None
    assert cpu_space.max_train_steps == 50 and "50 steps" in cpu_space.train_note
    assert not zero_gpu.train_enabled and "ZeroGPU" in zero_gpu.train_note
    assert zero_gpu.zero_gpu is not None and local.zero_gpu is None and cpu_space.zero_gpu is None
    for space in (cpu_space, zero_gpu):
        assert space.max_dataset_bytes < local.max_dataset_bytes
        assert space.outputs_max_bytes < local.outputs_max_bytes


GPU = deploy.ZeroGpu()
DEFAULT_480P = deploy.Shot(frames=81, height=480, width=832, steps=40, cfg=True)


def test_zero_gpu_estimates_grow_with_the_request():
    short = GPU.seconds(HUB_480P, deploy.Shot(17, 480, 832, 4, cfg=False))
    longer = GPU.seconds(HUB_480P, deploy.Shot(33, 480, 832, 20, cfg=True))
    full = GPU.seconds(HUB_480P, DEFAULT_480P)
    compare = GPU.seconds(HUB_480P, deploy.Shot(81, 480, 832, 40, cfg=True, generations=2))
    hd = GPU.seconds(HUB_720P, deploy.Shot(81, 720, 1280, 40, cfg=True))
    assert 60 <= short < longer < full < compare < hd
    # Wan's official 480P request is over what one ZeroGPU call may last: it must be refused, not cut off.
    assert full > deploy.ZERO_GPU_MAX_SECONDS and abs(compare - 2 * full) <= 1


def proposals(message: str) -> dict[str, int]:
    found = {}
    if m := re.search(r"at most (\d+) frames at (\d+) steps", message):
        found["frames"], found["frames_steps"] = int(m.group(1)), int(m.group(2))
    if m := re.search(r"at most (\d+) steps at (\d+) frames", message):
        found["steps"], found["steps_frames"] = int(m.group(1)), int(m.group(2))
    if m := re.search(r"speed adapter (\S+): (\d+) steps without CFG", message):
        found["speed_steps"] = int(m.group(2))
    return found


@pytest.mark.parametrize("model, shot", [
    (HUB_480P, DEFAULT_480P),
    (HUB_480P, deploy.Shot(81, 480, 832, 40, cfg=True, generations=2)),
    (HUB_720P, deploy.Shot(81, 720, 1280, 40, cfg=True)),
])
def test_a_request_over_the_limit_gets_proposals_that_fit(model, shot):
    message = GPU.refusal(model, shot, speed=("lightx2v", 4))
    assert message and len(message.splitlines()) == 1 and f"at most {GPU.max_seconds} s" in message
    found = proposals(message)
    assert set(found) == {"frames", "frames_steps", "steps", "steps_frames", "speed_steps"}, message
    fits = [deploy.Shot(found["frames"], shot.height, shot.width, shot.steps, shot.cfg, shot.generations),
            deploy.Shot(shot.frames, shot.height, shot.width, found["steps"], shot.cfg, shot.generations),
            deploy.Shot(shot.frames, shot.height, shot.width, found["speed_steps"], False, shot.generations)]
    assert all(GPU.fits(model, s) for s in fits)
    # ... and each is the most that fits: one more frame group or step does not.
    assert not GPU.fits(model, deploy.Shot(found["frames"] + 4, shot.height, shot.width, shot.steps, shot.cfg,
                                           shot.generations))
    assert not GPU.fits(model, deploy.Shot(shot.frames, shot.height, shot.width, found["steps"] + 1, shot.cfg,
                                           shot.generations))
    with pytest.raises(InputError, match="a ZeroGPU call may last at most"):
        GPU.check(model, shot)


def test_without_an_installed_speed_adapter_the_proposal_says_how_to_get_one():
    message = GPU.refusal(HUB_480P, DEFAULT_480P, speed=(None, 4))
    assert "a speed adapter (import one on the Adapters tab): 4 steps" in message
    assert GPU.refusal(HUB_480P, deploy.Shot(17, 480, 832, 4, cfg=False)) is None


def test_the_maximum_is_a_setting():
    generous = deploy.ZeroGpu(max_seconds=2000)
    assert generous.refusal(HUB_480P, DEFAULT_480P) is None
    assert "at most 2000 s" in generous.refusal(HUB_720P, deploy.Shot(161, 720, 1280, 40, cfg=True))


@pytest.mark.parametrize("model, preset, height, width", [(HUB_480P, "480P", 480, 832),
                                                          (HUB_720P, "720P", 720, 1280)])
def test_zero_gpu_defaults_fit_generate_and_compare(model, preset, height, width):
    official = ModelDefaults(preset=preset)
    for generations in (1, 2):
        fitted = GPU.fitting_defaults(model, official, height, width, generations)
        shot = deploy.Shot(fitted.frames, height, width, fitted.steps, fitted.guidance > 1, generations)
        assert GPU.fits(model, shot) and fitted.steps == 40 and (fitted.frames - 1) % 4 == 0
        assert not GPU.fits(model, deploy.Shot(fitted.frames + 4, height, width, 40, True, generations))
    assert deploy.ZeroGpu(max_seconds=5000).fitting_defaults(model, official, height, width) == official


def test_the_engine_is_fixed_wherever_strangers_can_reach_the_app():
    workstation, space = deploy.Deployment(None, False), deploy.Deployment("crew/cinescene", True)
    assert not deploy.engine_fixed(workstation, "127.0.0.1", share=False)
    assert not deploy.engine_fixed(workstation, "localhost", share=False)
    assert not deploy.engine_fixed(workstation, "::1", share=False)
    assert deploy.engine_fixed(workstation, "0.0.0.0", share=False)
    assert deploy.engine_fixed(workstation, "192.168.1.20", share=False)
    assert deploy.engine_fixed(workstation, "studio.local", share=False)
    assert deploy.engine_fixed(workstation, "127.0.0.1", share=True)
    assert deploy.engine_fixed(space, "127.0.0.1", share=False)


def test_a_fixed_engine_refuses_other_values_by_name():
    fixed = ModelSpec(model="tiny", memory="model-offload")
    deploy.check_engine(fixed, {"memory": "model-offload", "fp8": False, "attention": "native"})
    with pytest.raises(InputError, match=r"fixed by its operator .*memory model-offload.*cannot ask for fp8 True"):
        deploy.check_engine(fixed, {"memory": "model-offload", "fp8": True})


def test_auth_pairs():
    assert deploy.parse_auth(["crew:s3:cret", " ana :pw"]) == [("crew", "s3:cret"), ("ana", "pw")]
    for bad in ("crew", ":pw", "crew:"):
        with pytest.raises(InputError, match="USER:PASSWORD"):
            deploy.parse_auth([bad])


def test_gpu_is_a_no_op_without_the_spaces_package():
    def work(x):
        return x + 1

    assert deploy.gpu(work, lambda *a: 60) is work
