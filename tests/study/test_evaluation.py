"""Which distances a study computes (and says why not), and the evaluation it keeps for a resumed study."""

from __future__ import annotations

import numpy as np
import pytest

from cinescene import media
from cinescene.distances import DistanceFeatures
from cinescene.errors import InputError
from cinescene.evaluate import EvalItem
from cinescene.study import config as study_config
from cinescene.study import evaluation
from cinescene.study.items import HeldOut


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    root = tmp_path_factory.mktemp("held")
    clips = []
    for i in range(2):
        clips.append(media.write_video(np.full((17, 32, 48, 3), 40 * i, np.uint8), root / f"ref{i}.mp4"))
    return HeldOut([EvalItem(root / "x.png", "p", clip) for clip in clips], (0,), "here", [])


def plan(held, monkeypatch, tmp_path, frames=17, **study):
    monkeypatch.setenv("CINESCENE_I3D", str(tmp_path / "no-i3d.pt"))
    monkeypatch.setenv("CINESCENE_INCEPTION", str(tmp_path / "no-inception.pt"))
    config = study_config.build({"study": study, "train": {"model": "tiny", "data": "d"}})
    return evaluation.plan(config, config.sample_template().replace(frames=frames), held)


def test_auto_leaves_out_what_the_clips_or_the_machine_cannot_give_and_says_why(held, monkeypatch, tmp_path):
    names, notes = plan(held, monkeypatch, tmp_path)
    assert names == ()
    assert notes[0] == ("FVD_128, FID_128 skipped: the generated videos have 17 frames, 128 needed "
                        "(--frames 129 or more)")
    assert notes[1].startswith("FVD_16 not computed: FVD needs the I3D file i3d_torchscript.pt, not found at ")
    assert notes[2].startswith("FID_all not computed: FID needs the Inception file inception-2015-12-05.pt")


def test_a_detector_given_or_a_distance_named_is_computed_or_refused(held, monkeypatch, tmp_path, i3d_standin,
                                                                    inception_standin):
    names, notes = plan(held, monkeypatch, tmp_path, i3d=str(i3d_standin), inception=str(inception_standin))
    assert names == ("FVD_16", "FID_all") and len(notes) == 1
    with pytest.raises(InputError, match="FVD needs the I3D file"):
        plan(held, monkeypatch, tmp_path, distances="FVD_16")
    with pytest.raises(InputError, match="FVD_16 cannot be computed: the generated videos have 9 frames"):
        plan(held, monkeypatch, tmp_path, frames=9, distances="FVD_16", i3d=str(i3d_standin))
    assert plan(held, monkeypatch, tmp_path, distances="none") == ((), ["FVD and FID skipped: distances set to none"])


def test_the_kept_evaluation_comes_back_only_for_the_same_settings(tmp_path):
    rng = np.random.default_rng(0)
    features = DistanceFeatures({16: {label: rng.random((2, 400)) for label in ("reference", "base", "lora")}},
                                {label: [rng.random((17, 2048)) for _ in range(2)] for label in ("reference", "base",
                                                                                                  "lora")}, 17)
    kept = evaluation.Evaluation([{"variant": "base", "item": 0, "flicker": 0.9}], {"variants": {}}, ["a note"],
                                 features, [0, 1], {"dx": 3.0, "dy": 0.0, "zoom": 1.0})
    (tmp_path / evaluation.FOLDER).mkdir()
    evaluation.save(tmp_path / evaluation.FOLDER, kept, {"train": 1, "eval": 2})
    assert evaluation.load(tmp_path, {"train": 1, "eval": 3}) is None
    back = evaluation.load(tmp_path, {"train": 1, "eval": 2})
    assert (back.rows, back.not_computed, back.reference_positions, back.reference_camera) == \
        (kept.rows, kept.not_computed, kept.reference_positions, kept.reference_camera)
    assert back.features.fid_frames == 17 and set(back.features.fvd[16]) == {"reference", "base", "lora"}
    assert all(np.array_equal(back.features.fvd[16][k], features.fvd[16][k]) for k in features.fvd[16])
    assert all(np.array_equal(a, b) for k in features.fid for a, b in zip(back.features.fid[k], features.fid[k]))
