"""The learning test's measurements and checks, on rendered stand-ins for the four conditions (no model).

Each condition's "samples" are the held-out scenes rendered the way an adapter that does (or does
not) do its job would give them, so every check can be driven to pass and to fail on purpose.
"""

from __future__ import annotations

import pytest

from cinescene.toy import evidence, footage

from conftest import ROOT

EVALUATION = evidence.Evaluation(stills=2, seeds=(0, 1), frames=5)


def rendered(look: str, move: str) -> list[dict]:
    # "static" drifts a little with the seed (0.2 px/frame per seed), as a model's samples do: the base
    # then has a spread across seeds for the camera check to compare with.
    speed = {"static": lambda seed: 0.2 * seed, "pan-right": lambda seed: None}[move]
    return [{"still": i, "seed": seed,
             "frames": footage.render_clip(scene, look, "pan-right", EVALUATION.frames, EVALUATION.height,
                                           EVALUATION.width, seed=seed, speed=speed(seed))}
            for i, scene in enumerate(EVALUATION.scenes()) for seed in EVALUATION.seeds]


@pytest.fixture(scope="module")
def renders() -> dict[tuple[str, str], list[dict]]:
    return {(look, move): rendered(look, move) for look in ("neutral", "teal-orange")
            for move in ("static", "pan-right")}


def verdict(renders, **conditions: tuple[str, str]) -> dict:
    good = {"base": ("neutral", "static"), "style": ("teal-orange", "static"),
            "motion": ("neutral", "pan-right"), "both": ("teal-orange", "pan-right")}
    samples = {c: renders[conditions.get(c, good[c])] for c in evidence.CONDITIONS}
    target = [item["frames"] for item in renders[("teal-orange", "pan-right")]]
    results = evidence.measure(samples, target, EVALUATION)
    return results, evidence.checks(results, EVALUATION)


def test_adapters_that_do_their_jobs_pass_every_check(renders):
    results, checks = verdict(renders)
    assert all(c["pass"] for c in checks.values()), checks
    assert checks["style closes half the look gap"]["closed"] > 0.9
    assert checks["motion moves half the target speed"]["shift_px"] > 2.5
    # Motion alone keeps the stills' own look; the style adapter is what moves it.
    assert results["motion"]["look_to_own_look"] < 1.0 < results["style"]["look_to_own_look"]
    assert results["base"]["look_to_base"] == 0.0


def test_a_motion_adapter_that_also_grades_fails_the_look_check(renders):
    _, checks = verdict(renders, motion=("teal-orange", "pan-right"))
    assert not checks["motion leaves the look alone"]["pass"]
    assert checks["motion moves half the target speed"]["pass"]


def test_a_style_adapter_that_also_moves_fails_the_camera_check(renders):
    _, checks = verdict(renders, style=("teal-orange", "pan-right"))
    assert not checks["style leaves the camera alone"]["pass"]
    assert checks["style closes half the look gap"]["pass"]


def test_adapters_that_learnt_nothing_fail_the_learning_checks(renders):
    _, checks = verdict(renders, style=("neutral", "static"), motion=("neutral", "static"),
                        both=("neutral", "static"))
    # Only "style leaves the camera alone" holds; with no style effect, no look change is a small share of it.
    assert {name for name, check in checks.items() if check["pass"]} == {"style leaves the camera alone"}


def test_the_look_pools_pair_the_same_scenes_whatever_the_sampling_order(renders):
    samples = {c: renders[("teal-orange", "static")] for c in evidence.CONDITIONS}
    reversed_order = {c: items[::-1] for c, items in samples.items()}
    target = [item["frames"] for item in renders[("teal-orange", "pan-right")]]
    a, b = (evidence.measure(s, target, EVALUATION) for s in (samples, reversed_order))
    keys = ("look_to_target", "look_to_base", "look_to_own_look")
    assert all(a[c][k] == b[c][k] for c in evidence.CONDITIONS for k in keys)


def test_toy_evidence_measures_adapters_already_trained_on_the_stills_asked_for(tmp_path, capsys):
    """``--adapters loras`` checks the shipped demo adapters without training; the stills are the user's to pick."""
    import json

    from cinescene import cli

    out = tmp_path / "check"
    code = cli.main(["toy-evidence", str(out), "--adapters", str(ROOT / "loras"), "--stills", "1",
                     "--seeds", "3", "--eval-seed", "993", "--quiet"])
    result = json.loads((out / "evidence.json").read_text())
    assert code == (0 if result["passed"] else 1)
    assert "$ python -m cinescene train" not in capsys.readouterr().out and not (out / "runs").exists()
    assert (result["evaluation"]["stills"], result["evaluation"]["seeds"], result["evaluation"]["eval_seed"]) == (
        1, [3], 993)
    assert [(s["still"], s["seed"]) for s in result["results"]["style"]["samples"]] == [(0, 3)]
    # The demo adapters do something on a new still: the style adapter moves the look, the motion one the camera.
    assert result["results"]["style"]["look_to_base"] > 10
    assert result["results"]["motion"]["along_target"] > result["results"]["base"]["along_target"] + 0.5


@pytest.mark.parametrize("argv, message", [
    (["--adapters", "{empty}"], "no adapter named 'toy-teal-orange'"),
    (["--adapters", "{loras}", "--learning-rate", "0"], "--adapters measures adapters already trained"),
    (["--stills", "0"], "--stills must be at least 1"),
])
def test_toy_evidence_refuses_bad_input_before_writing_anything(tmp_path, capsys, argv, message):
    from cinescene import cli

    (tmp_path / "empty").mkdir()
    names = {"empty": tmp_path / "empty", "loras": ROOT / "loras"}
    argv = [a.format(**names) for a in argv]
    assert cli.main(["toy-evidence", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
