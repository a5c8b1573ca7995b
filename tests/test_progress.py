from __future__ import annotations

from cinescene import progress


def test_report_sends_one_progress_event():
    seen = []
    progress.report(seen.append, "denoising", 2, 5, timestep=0.5)
    assert seen == [{"type": "progress", "task": "denoising", "done": 2, "total": 5, "timestep": 0.5}]
    progress.report(None, "denoising", 1, 1)  # nobody listening is fine


def test_as_task_relabels_progress_only():
    seen = []
    relabelled = progress.as_task(seen.append, "base")
    relabelled({"type": "progress", "task": "denoising", "done": 1, "total": 2})
    relabelled({"type": "step", "task": "x"})
    assert seen == [{"type": "progress", "task": "base", "done": 1, "total": 2}, {"type": "step", "task": "x"}]
    assert progress.as_task(None, "base") is None
