"""The order of a study, and resuming it: train every arm, evaluate the base model and the arms, report.

``DIR/study.json`` records the settings each part of the study was made with (``StudyConfig.parts``, with the
content hashes of the training data and the held-out items). Run again on the same folder, a study continues
where it stopped: an arm whose run has published its output (the trainer's ``finished.json``) is not trained
again, an interrupted arm resumes from its last checkpoint (the trainer's own resume, bit for bit), and an
evaluation made with the same settings of the same arms is reused; the report is written afresh from them.
Other training settings or data for an existing study folder are refused (its arms were trained with the old
ones); other evaluation or report settings are applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic, outputs, progress
from ..errors import InputError
from ..record import now_iso
from ..training import checkpoints
from ..training.dataset import scan
from ..training.trainer import Trainer
from . import cost, evaluation, items, report
from .config import EVAL, TRAIN, StudyConfig

STATE = "study.json"


@dataclass
class StudyResult:
    status: str  # "done", or "interrupted" (a stop was asked for while an arm trained)
    report: dict[str, Any] | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)  # arms trained, or resumed, in this call
    reused: list[str] = field(default_factory=list)  # arms, and "eval", finished before this call


def _changed(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of the settings that differ between two fingerprints.

    A setting the old one lacks is not a change: a newer cinescene's new setting defaults to the old behaviour.
    """
    names = []
    for key in sorted(old):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += _changed(a, b, f"{prefix}{key}.")
        elif a != b:
            names.append(f"{prefix}{key}")
    return names


class Study:
    """One study folder: ``run`` does (or continues) the whole study; ``request_stop`` checkpoints and stops."""

    def __init__(self, config: StudyConfig, out: str | Path, command: str | None = None,
                 on_event: progress.OnEvent | None = None) -> None:
        self.config = config
        self.out = Path(out)
        self.command = command
        self.on_event = on_event
        self.trainer: Trainer | None = None
        self.stop_requested = False

    def request_stop(self) -> None:
        """Stop after the current training step, with a checkpoint to resume from (SIGTERM, Ctrl-C).

        Outside training (an evaluation) there is nothing to checkpoint: the caller interrupts it outright, and
        a resumed study evaluates again.
        """
        self.stop_requested = True
        if self.trainer is not None:
            self.trainer.request_stop()

    def emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event({"type": "study", **event})

    def _arm_events(self, arm: str) -> progress.OnEvent | None:
        on_event = self.on_event
        if on_event is None:
            return None

        def forward(event: progress.Event) -> None:
            on_event({**event, "arm": arm})

        return forward

    def check_folder(self, parts: dict[str, Any]) -> None:
        """Refuse a folder that is not this study's; record the settings of each part."""
        path = self.out / STATE
        if path.is_file():
            old = json.loads(path.read_text())
            changed = _changed(old["parts"][TRAIN], parts[TRAIN])
            if changed:
                raise InputError(f"{self.out} holds a study trained with other settings or data (changed: "
                                 f"{', '.join(changed[:6])}): give it the settings it was made with, or a new --out")
            state = {**old, "parts": parts, "sessions": old.get("sessions", 0) + 1}
        elif self.out.is_dir() and any(self.out.iterdir()):
            raise InputError(f"{self.out} is not empty and holds no study ({STATE}): choose a new or empty folder")
        else:
            self.out.mkdir(exist_ok=True)
            state = {"created": now_iso(), "parts": parts, "sessions": 1}
        atomic.write_json(path, {**state, "command": self.command})

    def run(self) -> StudyResult:
        out = outputs.check_out_folder(self.out)
        arms = self.config.arm_configs(out)
        first = next(iter(arms.values()))
        # The trainer's own check and split, before any work: the held-out items are the ones it leaves out.
        dataset = scan(first.data, stage=first.stage, window=first.window, fps=first.fps,
                       val_fraction=first.val_fraction, skip_bad=first.skip_bad, min_held_out=first.val_items)
        held = items.held_out(self.config, first, dataset, out)
        template = self.config.sample_template()
        parts = self.config.parts(arms)
        parts[TRAIN]["data_sha256"] = dataset.summary()["content_sha256"]
        parts[EVAL]["held_out"] = held.files
        self.check_folder(parts)
        held.write(out)
        result = StudyResult("done")
        for arm, config in arms.items():
            if checkpoints.finished(config.run_dir()) is not None:
                result.reused.append(arm)
                self.emit({"stage": "train", "arm": arm, "reused": True})
                continue
            if self.stop_requested:
                result.status = "interrupted"
                return result
            self.emit({"stage": "train", "arm": arm, "reused": False})
            cost.reset_peak_memory()
            self.trainer = Trainer(config, on_event=self._arm_events(arm))
            outcome = self.trainer.run()
            self.trainer = None
            result.trained.append(arm)
            if any(stage.stopped == "interrupted" for stage in outcome.stages):
                result.status = "interrupted"
                return result
        fingerprint = {TRAIN: parts[TRAIN], EVAL: parts[EVAL]}
        found = evaluation.load(out, fingerprint)
        self.emit({"stage": "evaluate", "reused": found is not None})
        if found is None:
            found = evaluation.run(self.config, arms, held, template, out, fingerprint, self.on_event)
        else:
            result.reused.append("eval")
        self.emit({"stage": "report"})
        costs = {arm: cost.arm_cost(config) for arm, config in arms.items()}
        result.report = report.build(self.config, arms, held, found, costs, dataset.summary(), self.command)
        result.paths = report.write(result.report, out)
        return result
