from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cinescene import compare, loading, media, sampler
from cinescene.adapters import AdapterLibrary
from cinescene.errors import InputError
from cinescene.settings import AdapterChoice, ModelSpec, SampleSettings

import lora_fixtures as lf

SETTINGS = SampleSettings(prompt="a lighthouse", steps=3, frames=5, height=32, width=48, preset="preview", seed=5,
                          adapters=(AdapterChoice("style", "look"), AdapterChoice("motion", "push", 0.7)))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    lib = AdapterLibrary(root / "loras")
    tr = loading.build_tiny_pipeline().transformer
    for name, suffixes, kind in (("look", lf.STYLE, "style"), ("push", lf.MOTION, "motion")):
        path = lf.save(lf.diffusers_layout(lf.random_lora(tr, suffixes, seed=len(name))), root / f"{name}.safetensors")
        lib.import_file(path, kind, name=name, base_model="tiny", transformer=tr)
    return lib


def test_compare_writes_both_videos_and_every_metric(tiny_model, library, metric_nets, still, tmp_path):
    image = media.load_image(still)
    stages = []
    result = compare.compare(tiny_model, image, SETTINGS, tmp_path / "cmp", library, metric_nets,
                             on_event=lambda e: stages.append(e["task"]))
    plain = sampler.sample(loading.load_model(ModelSpec(model="tiny")), image,
                           dataclasses.replace(SETTINGS, adapters=())).frames
    assert np.array_equal(result.base.frames, plain)  # base = the plain model, bit for bit
    assert not np.array_equal(result.base.frames, result.tuned.frames)
    assert np.array_equal(media.read_video(tmp_path / "cmp" / "base.mp4").frames.shape, plain.shape)
    saved = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    for label in ("base", "tuned"):
        assert set(saved["videos"][label]) == {"clip_text", "clip_image", "clip_consistency", "lpips_temporal",
                                               "flicker"}
        assert len(saved["videos"][label]["clip_text"]["series"]) == 5
        assert len(saved["videos"][label]["flicker"]["series"]) == 4
    assert len(saved["pair"]["lpips_pair"]["series"]) == 5 and saved["pair"]["lpips_pair"]["mean"] > 0
    assert "lpips_pair" in saved["uncalibrated"] and saved["videos"]["base"]["clip_text"]["calibrated"] is False
    assert [a["name"] for a in saved["adapters"]] == ["look", "push"]
    assert {"base", "tuned", "scoring"} <= set(stages)
    side = media.read_video(tmp_path / "cmp" / "side_by_side.mp4")
    assert side.size == (32, 96)
    rows = compare.metrics_table(saved)
    assert rows[0][0] == "CLIP-SIM text" and rows[-1][0] == "LPIPS base vs tuned"
    assert all("NO" in row[-1] for row in rows if row[0] != "flicker (VBench)")


def test_compare_needs_an_adapter(tiny_model, library, metric_nets, still, tmp_path):
    with pytest.raises(InputError, match="nothing to compare"):
        compare.compare(tiny_model, media.load_image(still), dataclasses.replace(SETTINGS, adapters=()),
                        tmp_path / "x", library, metric_nets)
    assert not (tmp_path / "x").exists()
