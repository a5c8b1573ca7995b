from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from cinescene import compare, loading, media, sampler
from cinescene.errors import InputError
from cinescene.settings import AdapterChoice, ModelSpec, SampleSettings

import lora_fixtures as lf

SETTINGS = SampleSettings(prompt="a lighthouse", steps=3, frames=5, height=32, width=48, preset="preview", seed=5,
                          adapters=(AdapterChoice("style", "look"), AdapterChoice("motion", "push", 0.7)))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return lf.style_and_motion_library(tmp_path_factory.mktemp("cmp"))


def test_compare_writes_both_videos_and_every_metric(tiny_model, library, metric_nets, still, tmp_path):
    image = media.load_image(still)
    stages = []
    reference = (np.random.default_rng(3).random((7, 64, 80, 3)) * 255).astype(np.uint8)  # another size and length
    result = compare.compare(tiny_model, image, SETTINGS, tmp_path / "cmp", library, metric_nets,
                             on_event=lambda e: stages.append(e["task"]), reference=reference)
    plain = sampler.sample(loading.load_model(ModelSpec(model="tiny")), image,
                           dataclasses.replace(SETTINGS, adapters=())).frames
    assert np.array_equal(result.base.frames, plain)  # base = the plain model, bit for bit
    assert not np.array_equal(result.base.frames, result.tuned.frames)
    assert np.array_equal(media.read_video(tmp_path / "cmp" / "base.mp4").frames.shape, plain.shape)
    saved = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    for label in ("base", "tuned"):
        assert set(saved["videos"][label]) == {"clip_text", "clip_image", "clip_consistency", "lpips_temporal",
                                               "flicker", "camera", "lpips_reference", "look"}
        assert len(saved["videos"][label]["clip_text"]["series"]) == 5
        assert len(saved["videos"][label]["flicker"]["series"]) == 4
        assert len(saved["videos"][label]["camera"]["pairs"]) == 4 and saved["videos"][label]["look"]["distance"] > 0
    assert len(saved["pair"]["lpips_pair"]["series"]) == 5 and saved["pair"]["lpips_pair"]["mean"] > 0
    assert "lpips_pair" in saved["uncalibrated"] and saved["videos"]["base"]["clip_text"]["calibrated"] is False
    assert [a["name"] for a in saved["adapters"]] == ["look", "push"]
    assert {"base", "tuned", "scoring"} <= set(stages)
    side = media.read_video(tmp_path / "cmp" / "side_by_side.mp4")
    assert side.size == (32, 96)
    rows = compare.metrics_table(saved)
    assert rows[0][0] == "CLIP-SIM text" and "LPIPS base vs tuned" in [row[0] for row in rows]
    network_free = ("flicker", "camera", "look", "saturation", "contrast")
    assert all(("NO" in row[-1]) != row[0].startswith(network_free) for row in rows), rows
    assert saved["files"]["per_frame"] == "per_frame.csv"
    with open(tmp_path / "cmp" / "per_frame.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 5 and table[0]["base_camera_dx"] == "" and float(table[1]["tuned_flicker"]) > 0


def test_compare_needs_an_adapter(tiny_model, library, metric_nets, still, tmp_path):
    with pytest.raises(InputError, match="nothing to compare"):
        compare.compare(tiny_model, media.load_image(still), dataclasses.replace(SETTINGS, adapters=()),
                        tmp_path / "x", library, metric_nets)
    assert not (tmp_path / "x").exists()


def toy_clip(move, look="neutral", frames=3):
    from cinescene.toy import footage

    scene = footage.random_scene(np.random.default_rng(2), 112 / 64)
    return footage.render_clip(scene, look, move, frames, 64, 112, speed=3.0 if move != "static" else None)


def test_table_and_per_frame_series_carry_camera_and_look(metric_nets):
    from cinescene import metrics

    base, tuned = toy_clip("pan-right"), toy_clip("pan-left", "sepia")
    result = metrics.score_pair(metric_nets, base, tuned, prompt="x", reference=toy_clip("static", "sepia", 2))
    rows = {row[0]: row for row in compare.metrics_table(result)}
    assert rows["camera motion"][1:3] == ["pan-right", "pan-left"]
    dx = rows["camera dx (px/frame, + pans right)"]
    assert dx[1] == pytest.approx(3.0, abs=0.1) and dx[2] == pytest.approx(-3.0, abs=0.1)
    assert dx[3] == pytest.approx(dx[2] - dx[1], abs=1e-3)
    to_ref = rows["look distance to the reference"]
    assert to_ref[2] < 0.2 * to_ref[1]  # tuned shares the reference's sepia grade; base does not
    assert rows["look distance tuned vs base"][3] > 100 and rows["look distance tuned vs base"][-1] == "yes"
    assert rows["saturation (mean Lab chroma)"][2] < rows["saturation (mean Lab chroma)"][1]  # sepia is muted
    assert "LPIPS to the reference" in rows
    columns = compare.per_frame(result)
    assert columns["frame"] == [0, 1, 2]
    assert columns["tuned_camera_dx"][0] is None
    assert columns["tuned_camera_dx"][1:] == [p[0] for p in result["videos"]["tuned"]["camera"]["pairs"]]
    assert columns["lpips_pair"] == result["pair"]["lpips_pair"]["series"]
    assert compare.per_frame_csv(result).splitlines()[0].startswith("frame,base_clip_text,")
