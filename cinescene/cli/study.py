"""``python -m cinescene study``: base against LoRA against full fine-tuning on one dataset, from one config file."""

from __future__ import annotations

import argparse
import shlex
import signal
from collections.abc import Sequence
from typing import Any

from ..progress import Event
from ..study.config import METHOD_SETTINGS, STUDY_SET, StudyConfig
from ..training.config import TrainConfig
from .common import add_dataclass_flags, given
from .train import TrainProgress


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("study", help="train a LoRA and a full fine-tuning arm on the same data and steps, evaluate "
                                     "them and the base model on held-out items, report with intervals")
    p.add_argument("--config", default=None, help="TOML or YAML file: [study], [train] (every arm), [lora], [full], "
                                                  "[sample] (the evaluation shots); flags override it")
    p.add_argument("--out", required=True, help="the study folder: report.md, report.json, plots/, runs/, eval/; "
                                                "run the same command again to resume")
    add_dataclass_flags(p, StudyConfig)
    # The settings every arm shares; what differs between arms (METHOD_SETTINGS) is set in the file's tables.
    add_dataclass_flags(p, TrainConfig, skip=STUDY_SET + METHOD_SETTINGS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_study)


class StudyProgress(TrainProgress):
    """The trainer's bars and lines, and a line as the study moves from arm to arm."""

    def __call__(self, event: Event) -> None:
        if event.get("type") == "study" and self.bars.enabled:
            self.bars.close()
            what = {"train": f"arm {event.get('arm')}: " + ("trained before, kept" if event.get("reused")
                                                             else "training"),
                    "evaluate": "evaluating base and every arm" + (": done before, kept" if event.get("reused")
                                                                  else ""),
                    "report": "writing the report"}[event["stage"]]
            self.bars.write(f"study: {what}")
            return
        super().__call__(event)


def command_line(argv: Sequence[str]) -> str:
    return "python -m cinescene " + shlex.join(argv)


def cmd_study(args: argparse.Namespace) -> int:
    from ..study import config as study_config
    from ..study.report import tables
    from ..study.runner import Study
    from ..training.config import read_file

    file_values = read_file(args.config) if args.config else {}
    config = study_config.build(file_values, given(args, StudyConfig), given(args, TrainConfig))
    progress = StudyProgress(enabled=not args.quiet)
    study = Study(config, args.out, command=command_line(args.argv), on_event=progress)

    def stop(signum: int, frame: Any) -> None:
        # Training: finish the current step, checkpoint, exit; a second signal kills at once. Otherwise (the
        # evaluation) stop now: its files are whole or absent, and a resumed study evaluates again.
        signal.signal(signum, signal.SIG_DFL)
        if study.trainer is None:
            raise KeyboardInterrupt
        study.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        result = study.run()
    finally:
        progress.close()
    if result.status == "interrupted":
        print(f"stopped with a checkpoint; run the same command again to continue the study in {args.out}")
        return 130
    assert result.report is not None
    print("\n".join(tables(result.report)))
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0
