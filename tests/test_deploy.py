from __future__ import annotations

from cinescene import deploy
from cinescene.settings import PRESETS


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
    for space in (cpu_space, zero_gpu):
        assert space.max_dataset_bytes < local.max_dataset_bytes
        assert space.outputs_max_bytes < local.outputs_max_bytes


def test_zero_gpu_durations_grow_with_the_request_and_stay_in_bounds():
    area = PRESETS["480P"].area
    short = deploy.sample_seconds(frames=17, steps=4, area=area, cfg=False)
    longer = deploy.sample_seconds(frames=33, steps=20, area=area)
    full = deploy.sample_seconds(frames=81, steps=40, area=area)
    assert 60 <= short < longer <= full == 300


def test_gpu_is_a_no_op_without_the_spaces_package():
    def work(x):
        return x + 1

    assert deploy.gpu(work, lambda *a: 60) is work
