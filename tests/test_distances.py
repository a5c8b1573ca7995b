from __future__ import annotations

import numpy as np
import pytest

from cinescene import distances, fid, fvd
from cinescene.errors import InputError


def test_parse():
    assert distances.parse("auto") is None
    assert distances.parse("none") == ()
    assert distances.parse("FVD_128, FID_128,FVD_128") == ("FVD_128", "FID_128")
    with pytest.raises(InputError, match="unknown distance FVD-16: use auto, none or a comma list of FVD_16"):
        distances.parse("FVD-16")


def test_auto_computes_what_the_set_allows_and_says_why_not_the_rest():
    plan = distances.plan_distances(None, frames=81, reference_lengths=[100, 90])
    assert plan.names == ("FVD_16", "FID_all") and plan.all_frames == 81
    assert plan.fvd_clips == [16] and plan.fid_clips == [81]
    assert plan.notes == ("FVD_128, FID_128 skipped: the generated videos have 81 frames, 128 needed "
                          "(--frames 129 or more)",)
    plan = distances.plan_distances(None, frames=129, reference_lengths=[140, 130, 200])
    assert plan.names == distances.NAMES and plan.notes == ()
    assert plan.fvd_clips == [16, 128] and plan.fid_clips == [128, 129]
    plan = distances.plan_distances(None, frames=129, reference_lengths=[140, 100])
    assert plan.names == ("FVD_16", "FID_all") and plan.all_frames == 100
    assert plan.notes == ("FVD_128, FID_128 skipped: the shortest reference clip has 100 frames, 128 needed",)
    plan = distances.plan_distances(None, frames=9, reference_lengths=[20, 20])
    assert plan.names == ("FID_all",) and plan.all_frames == 9
    assert plan.notes[0].startswith("FVD_16 skipped: the generated videos have 9 frames, 16 needed (--frames 17")
    plan = distances.plan_distances(None, frames=81, reference_lengths=[100])
    assert plan.names == () and plan.notes == (
        "FVD_16, FVD_128, FID_128, FID_all skipped: the set has 1 reference clip(s), at least 2 needed",)
    assert distances.plan_distances((), 81, [100, 100]).names == ()


@pytest.mark.parametrize("requested, frames, lengths, given, message", [
    (("FVD_128",), 81, [200, 200], {}, "FVD_128 cannot be computed: the generated videos have 81 frames, 128 needed"),
    (("FID_128", "FVD_16"), 129, [200, 64], {}, "FID_128 cannot be computed: the shortest reference clip has 64"),
    (("FVD_16",), 81, [100], {}, "FVD_16 cannot be computed: the set has 1 reference clip"),
    (None, 81, [100], {"i3d_given": True}, "FVD_16 cannot be computed: the set has 1 reference clip"),
    (None, 81, [], {"inception_given": True}, "FID_all cannot be computed: the set has 0 reference clip"),
])
def test_asking_for_what_cannot_be_computed_is_a_one_line_error(requested, frames, lengths, given, message):
    with pytest.raises(InputError, match=message) as err:
        distances.plan_distances(requested, frames, lengths, **given)
    assert "\n" not in str(err.value)


def test_missing_detector_files_fail_before_anything_runs(tmp_path, i3d_standin):
    plan = distances.plan_distances(None, 81, [100, 100])
    with pytest.raises(InputError, match="inception-2015-12-05.pt.*; or choose the distances to compute with "
                                         "--distances"):
        distances.load_detectors(plan, i3d_standin, tmp_path / "missing.pt", automatic=True)
    with pytest.raises(InputError, match="i3d_torchscript.pt") as err:
        distances.load_detectors(distances.plan_distances(("FVD_16",), 81, [100, 100]), tmp_path / "missing.pt")
    assert "--distances" not in str(err.value)  # asked for explicitly: no hint to leave it out
    plan = distances.plan_distances(("FVD_16",), 81, [100, 100])
    i3d, inception = distances.load_detectors(plan, i3d_standin, tmp_path / "missing.pt")
    assert i3d is fvd.load_i3d(i3d_standin) and inception is None  # only what the plan needs is loaded


def video(seed: int, frames: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((frames, 24, 32, 3)) * 255).astype(np.uint8)


def test_every_planned_distance_for_every_variant(i3d_standin, inception_standin):
    plan = distances.plan_distances(None, frames=129, reference_lengths=[140, 130])
    reference = [video(10, 140), video(11, 130)]
    generated = {"base": [video(0, 129), video(1, 129)], "look": [video(2, 129), video(3, 129)]}
    i3d, inception = distances.load_detectors(plan, i3d_standin, inception_standin)
    found = distances.compute_distances(plan, generated, reference, i3d, inception)
    assert list(found["look"]) == ["FVD_16", "FVD_128", "FID_128", "FID_129"]
    entry = found["look"]["FID_129"]
    assert (entry["name"], entry["clip_frames"], entry["videos"], entry["reference_videos"]) == ("FID_129", 129, 2, 2)
    assert (entry["samples"], entry["reference_samples"]) == (258, 258)
    # The same numbers as the metric modules give one by one.
    assert found["base"]["FVD_128"]["value"] == pytest.approx(
        fvd.fvd(i3d, generated["base"], reference, 128).value, rel=1e-9)
    assert found["look"]["FID_128"]["value"] == pytest.approx(
        fid.fid(inception, generated["look"], reference, 128).value, rel=1e-9)
