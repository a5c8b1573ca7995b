"""The study's settings file: tables checked against the dataclasses they belong to, arms matched but for method."""

from __future__ import annotations

import dataclasses

import pytest

from cinescene.cli import build_parser
from cinescene.cli.common import given
from cinescene.errors import InputError
from cinescene.study import config as study_config
from cinescene.study.config import EVAL, METHOD_SETTINGS, REPORT, TRAIN, StudyConfig
from cinescene.training.config import TrainConfig, read_file

from conftest import ROOT

FILE = {"study": {"eval_seeds": [0, 1]},
        "train": {"model": "tiny", "data": "footage", "stage": "motion", "steps": 30, "seed": 3},
        "lora": {"rank": 4, "alpha": 8.0, "learning_rate": 1e-3}, "full": {"learning_rate": 1e-5},
        "sample": {"steps": 4, "frames": 9}}


def test_each_arm_is_the_shared_settings_then_its_own_then_the_studys(tmp_path):
    config = study_config.build(FILE)
    arms = config.arm_configs(tmp_path / "s")
    assert list(arms) == ["lora", "full"]
    lora, full = arms["lora"], arms["full"]
    assert (lora.method, lora.rank, lora.alpha, lora.learning_rate) == ("lora", 4, 8.0, 1e-3)
    assert (full.method, full.learning_rate) == ("full", 1e-5)
    for arm in (lora, full):
        assert (arm.steps, arm.seed, arm.stage, arm.data) == (30, 3, "motion", "footage")
        assert (arm.early_stopping, arm.keep_best, arm.resume) == (False, False, True)
        assert arm.run_dir() == tmp_path / "s" / "runs" / arm.name
    template = config.sample_template()
    assert (template.steps, template.frames, template.preset) == (4, 9, "preview")  # tiny's own preset


def test_the_toy_study_config_matches_its_arms_in_everything_but_the_method():
    config = study_config.build(read_file(ROOT / "configs" / "study_toy.toml"))
    lora, full = (c.to_dict() for c in config.arm_configs("study-toy").values())
    differ = {k for k in lora if lora[k] != full[k]}
    assert differ <= {*METHOD_SETTINGS, "name", "method", "description"} and "learning_rate" in differ
    assert config.model == "toy" and config.stage == "motion" and config.sample_template().frames == 17


@pytest.mark.parametrize("change, message", [
    ({"lora": {"steps": 10}}, r"\[lora\] sets steps: the arms must match in it, set it once in \[train\]"),
    ({"train": {"rank": 4}}, r"\[train\] sets rank: it is the LoRA arm's setting, put it in \[lora\]"),
    ({"train": {"early_stopping": True}}, r"\[train\] sets early_stopping: the study sets it"),
    ({"full": {"alpha": 4.0}}, r"\[full\] sets alpha: it is a LoRA setting"),
    ({"full": {"nonsense": 1}}, r"unknown setting 'nonsense' in \[full\]"),
    ({"train": {"stage": "both"}}, "a study trains one stage, style or motion"),
    ({"train": {"steps": 0}}, "steps must be between"),
    ({"lora": {"learning_rate": 5.0}}, "learning rate must be"),
    ({"sample": {"seed": 3}}, r"\[sample\] sets 'seed'"),
    ({"study": {"arms": ["lora", "lora"]}}, "each once"),
    ({"study": {"distances": "FVD_32"}}, "unknown distance FVD_32"),
    ({"study": {"bootstrap_resamples": 10}}, "bootstrap resamples must be"),
    ({"study": {"seeds": [1]}}, "unknown study setting 'seeds'"),
    ({"extras": {}}, r"unknown table 'extras'"),
])
def test_bad_settings_are_named(change, message):
    with pytest.raises(InputError, match=message):
        study_config.build({**FILE, **{k: {**FILE.get(k, {}), **v} for k, v in change.items()}})


def test_each_part_of_the_fingerprint_changes_with_its_own_settings():
    def parts(**tables):
        config = study_config.build({**FILE, **{k: {**FILE[k], **v} for k, v in tables.items()}})
        return config.parts(config.arm_configs("anywhere"))

    base = parts()
    assert parts(full={"learning_rate": 2e-5})[TRAIN] != base[TRAIN]
    assert parts(study={"arms": ["lora"]})[TRAIN] != base[TRAIN]
    changed_eval = parts(study={"eval_seeds": [0]}, sample={"steps": 5})
    assert changed_eval[TRAIN] == base[TRAIN] and changed_eval[EVAL] != base[EVAL]
    changed_report = parts(study={"bootstrap_seed": 1})
    assert (changed_report[TRAIN], changed_report[EVAL]) == (base[TRAIN], base[EVAL])
    assert changed_report[REPORT] != base[REPORT]
    config = study_config.build(FILE)
    assert config.parts(config.arm_configs("here")) == config.parts(config.arm_configs("/elsewhere/study"))


def test_the_command_takes_the_study_settings_and_the_shared_training_settings_as_flags():
    parser = build_parser()
    args = parser.parse_args(["study", "--out", "s", "--eval-seeds", "1", "2", "--arms", "lora", "--steps", "5",
                              "--model", "tiny", "--max-items", "3"])
    assert given(args, StudyConfig) == {"eval_seeds": (1, 2), "arms": ("lora",), "max_items": 3}
    assert given(args, TrainConfig) == {"steps": 5, "model": "tiny"}
    config = study_config.build(FILE, given(args, StudyConfig), given(args, TrainConfig))
    assert (config.arms, config.eval_seeds, config.train["steps"], config.train["seed"]) == (("lora",), (1, 2), 5, 3)
    study_flags = {f.name for f in dataclasses.fields(StudyConfig) if f.metadata.get("cli") is not False}
    assert study_flags <= set(vars(args))
    for setting in ("learning_rate", "rank", "early_stopping", "runs_dir"):  # an arm's own, or the study's
        with pytest.raises(SystemExit):
            parser.parse_args(["study", "--out", "s", "--" + setting.replace("_", "-"), "1"])
