"""A whole study: an interrupted one on the tiny model resumes to the same report, and what resuming refuses."""

from __future__ import annotations

import math

import pytest

from cinescene.errors import InputError
from cinescene.study import config as study_config
from cinescene.study.runner import Study
from cinescene.training.log import read_log

from footage import make_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("study") / "data", clips=2, stills=0, frames=12)
    make_dataset(root / "validation", clips=2, stills=0, frames=12)  # the held-out items: two clips
    return root


def tiny_study(data, **study):
    """Two arms of 4 steps on the tiny model, evaluated on the 2 held-out clips."""
    return study_config.build({
        "study": {"distances": "none", "bootstrap_resamples": 200, **study},
        "train": {"model": "tiny", "data": str(data), "stage": "motion", "steps": 4, "window": 5, "area": 48 * 64,
                  "grad_accum": 1, "val_every": 4, "val_items": 1, "val_seeds": 1, "val_steps": 2,
                  "checkpoint_every": 2, "cache_dir": str(data.parent / "cache")},
        "lora": {"learning_rate": 1e-2}, "full": {"learning_rate": 1e-3},
        "sample": {"steps": 2, "frames": 5, "height": 32, "width": 48, "preset": "preview"}})


def numbers(report):
    """What must not depend on how the study was run: every metric, interval and difference, and what trained."""
    cost = {arm: {k: c[k] for k in ("steps", "trainable_parameters", "output_mb")} for arm, c in report["cost"].items()}
    return report["metrics"], cost, report["held_out"]["files"]


class Interrupted(Exception):
    pass


def test_an_interrupted_study_resumes_to_the_same_report(tmp_path, data):
    straight = Study(tiny_study(data), tmp_path / "straight").run()
    assert straight.status == "done" and straight.trained == ["lora", "full"]
    metrics = straight.report["metrics"]
    assert straight.report["arms"] == ["base", "lora", "full"]
    for entry in metrics.values():  # every metric of every arm and every difference has an interval
        for value in [*entry["arms"].values(), *entry["differences"].values()]:
            assert value["n"] == 2 and all(math.isfinite(v) for v in (value["mean"], *value["ci95"]))

    def fail(event):  # the full arm dies after its step 3, its last checkpoint at step 2
        if event.get("arm") == "full" and event.get("type") == "step" and event["step"] == 3:
            raise Interrupted

    out = tmp_path / "resumed"
    with pytest.raises(Interrupted):
        Study(tiny_study(data), out, on_event=fail).run()
    assert (out / "runs" / "lora" / "finished.json").is_file() and not (out / "runs" / "full" / "finished.json").exists()
    assert not (out / "report.json").exists()
    lora_log = read_log(out / "runs" / "lora" / "log.jsonl")
    events = []
    resumed = Study(tiny_study(data), out, on_event=events.append).run()
    assert (resumed.reused, resumed.trained) == (["lora"], ["full"])
    assert read_log(out / "runs" / "lora" / "log.jsonl") == lora_log  # the finished arm was not even started
    start = next(e for e in events if e.get("type") == "stage_start")
    assert (start["arm"], start["resumed_from"]) == ("full", 2)
    assert [e["step"] for e in events if e.get("type") == "step"] == [3, 4]
    assert numbers(resumed.report) == numbers(straight.report)
    assert resumed.report["cost"]["full"]["sessions"] == 2 and resumed.report["cost"]["lora"]["sessions"] == 1

    # Once more: nothing trains or evaluates again, and the report is the same.
    again = Study(tiny_study(data), out).run()
    assert (again.reused, again.trained) == (["lora", "full", "eval"], [])
    assert numbers(again.report) == numbers(straight.report)

    # Other training settings for this folder are refused before any work (that other evaluation settings make the
    # study evaluate again is test_config's and test_evaluation's: the fingerprint's parts and the kept evaluation).
    with pytest.raises(InputError, match=r"trained with other settings or data \(changed: arms.full.steps, "
                                         r"arms.lora.steps\)"):
        Study(study_config.build({**tiny_study_file(data), "train": {**tiny_study_file(data)["train"], "steps": 5}}),
              out).run()


def tiny_study_file(data):
    config = tiny_study(data)
    return {"study": {"distances": config.distances, "bootstrap_resamples": config.bootstrap_resamples},
            "train": config.train, "lora": config.lora, "full": config.full, "sample": config.sample}


def test_a_folder_that_holds_something_else_is_refused(tmp_path, data):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is not empty and holds no study"):
        Study(tiny_study(data), tmp_path / "busy").run()
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
