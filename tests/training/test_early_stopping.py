"""Early stopping's rule on a stage's state: what counts as better, when patience runs out, what a resume keeps."""

from __future__ import annotations

import copy

from cinescene.training import early_stopping
from cinescene.training.config import build


def run(state, config, values):
    """Validate at steps 10, 20, ... with these scores; the new-best flags."""
    flags = []
    for value in values:
        state["step"] += 10
        flags.append(early_stopping.record(state, {config.val_score: value}, config))
    return flags


def test_a_gain_within_min_delta_is_not_an_improvement_and_patience_counts_validations():
    config = build(data="d", name="n", min_delta=0.01, patience=2)
    state = early_stopping.new_state("style", None)
    assert run(state, config, [0.50, 0.495, 0.48, 0.475]) == [True, False, True, False]
    assert early_stopping.best_step(state) == 30 and early_stopping.best_scores(state) == {"lpips": 0.48}
    assert not early_stopping.patience_ran_out(state, config)
    assert run(state, config, [0.471]) == [False]
    assert early_stopping.patience_ran_out(state, config)
    assert [h["step"] for h in state["history"]] == [10, 20, 30, 40, 50]


def test_the_score_followed_is_the_configured_one():
    config = build(data="d", name="n", val_score="look", min_delta=0.0)
    state = early_stopping.new_state("style", None)
    summaries = [{"lpips": 0.5, "look": 200.0}, {"lpips": 0.4, "look": 250.0}, {"lpips": 0.6, "look": 150.0}]
    flags = []
    for summary in summaries:
        state["step"] += 1
        flags.append(early_stopping.record(state, summary, config))
    assert flags == [True, False, True] and early_stopping.best_step(state) == 3


def test_a_best_recorded_without_the_score_counts_as_beaten():
    # A checkpoint written before the look distance was measured: its best has LPIPS only.
    config = build(data="d", name="n", val_score="look")
    state = early_stopping.new_state("motion", "style-a")
    state["best"] = {"step": 5, "lpips": 0.1}
    assert run(state, config, [300.0]) == [True] and early_stopping.best_step(state) == 10


def test_the_count_survives_a_resume_from_the_saved_state():
    config = build(data="d", name="n", patience=3, min_delta=0.0)
    state = early_stopping.new_state("style", None)
    run(state, config, [0.5, 0.6, 0.7])
    resumed = copy.deepcopy(state)  # what checkpoints.save writes and checkpoints.load gives back
    assert run(resumed, config, [0.8]) == [False] and early_stopping.patience_ran_out(resumed, config)
    assert early_stopping.best_step(early_stopping.new_state("style", None)) is None
