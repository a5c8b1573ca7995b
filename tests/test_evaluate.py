from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from cinescene import evaluate, frechet, loading, media
from cinescene.adapters import AdapterLibrary
from cinescene.errors import InputError
from cinescene.settings import AdapterChoice, ModelSpec, SampleSettings

import lora_fixtures as lf
from conftest import make_still


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("set")
    for i in range(3):
        make_still(root / f"still{i}.png", seed=i)
    for i in range(2):
        frames = (np.random.default_rng(i).random((17, 32, 48, 3)) * 255).astype(np.uint8)
        media.write_video(frames, root / f"ref{i}.mp4")
    rows = [{"image": "still0.png", "prompt": "a harbour", "reference": "ref0.mp4", "seed": 1},
            {"image": "still1.png", "prompt": "a street", "reference": "ref1.mp4"},
            {"image": "still2.png", "prompt": "a road"}]
    (root / "set.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with open(root / "set.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "prompt", "reference", "seed"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_read_set_jsonl_and_csv_agree(eval_set):
    a, b = evaluate.read_set(eval_set / "set.jsonl"), evaluate.read_set(eval_set / "set.csv")
    assert a == b and len(a) == 3
    assert a[0].seed == 1 and a[2].reference is None and a[0].image.is_absolute()


@pytest.mark.parametrize("content, message", [
    ('{"image": "still0.png"}\n', "line 1: needs an image and a prompt"),
    ('{"image": "nope.png", "prompt": "x"}\n', "image not found"),
    ('{"image": "still0.png", "prompt": "x", "reference": "gone.mp4"}\n', "reference clip not found"),
    ('{"image": "still0.png", "prompt": "x", "seed": "abc"}\n', "not a whole number"),
    ("not json\n", "line 1: not JSON"),
    ("", "holds no items"),
])
def test_bad_set_files(eval_set, content, message):
    path = eval_set / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        evaluate.read_set(path)


def test_variant_parsing():
    v = evaluate.Variant.parse("noir=style:noir:0.8,motion:dolly")
    assert v.adapters == (AdapterChoice("style", "noir", 0.8), AdapterChoice("motion", "dolly"))
    assert evaluate.Variant.parse("full=model:/models/ft").model == "/models/ft"
    with pytest.raises(InputError):
        evaluate.Variant.parse("no-equals-sign")


def test_interval95():
    mean, low, high = evaluate.interval95([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and low == pytest.approx(2.5 - 3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)
    assert np.isnan(evaluate.interval95([1.0])[1])


def test_eval_base_lora_and_full_finetune(eval_set, tmp_path, metric_nets, i3d_standin, inception_standin):
    tr = loading.build_tiny_pipeline().transformer
    lib = AdapterLibrary(tmp_path / "loras")
    lib.import_file(lf.save(lf.diffusers_layout(lf.random_lora(tr, lf.STYLE, seed=3)), tmp_path / "s.safetensors"),
                    "style", name="look", base_model="tiny", transformer=tr)
    full = tmp_path / "full-ft"
    finetuned = loading.build_tiny_pipeline(seed=7)  # stands in for a fully fine-tuned model folder
    finetuned.save_pretrained(full)
    template = SampleSettings(prompt="x", steps=2, frames=17, height=32, width=48, preset="preview")
    variants = [evaluate.Variant("lora", (AdapterChoice("style", "look"),)), evaluate.Variant("full", model=str(full))]
    seen = []
    result = evaluate.run(ModelSpec(model="tiny"), evaluate.read_set(eval_set / "set.jsonl"), variants, template,
                          tmp_path / "out", lib, metric_nets, i3d_path=str(i3d_standin),
                          inception_path=str(inception_standin),
                          on_event=lambda e: seen.append((e["done"], e["total"])))
    assert seen[-1] == (9, 9)
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert [r["variant"] for r in rows].count("full") == 3 and len(rows) == 9
    assert rows[0]["lpips_reference"] and not rows[2]["lpips_reference"]  # only items with a reference
    assert rows[0]["look_distance"] and not rows[2]["look_distance"]
    assert all(r["camera_dx"] and r["camera_zoom"] for r in rows)  # every video, reference or not
    summary = result.summary["variants"]
    assert set(summary) == {"base", "lora", "full"}
    # Two items have a reference clip: FVD_16 and FID on all 17 frames, on 2 videos a side.
    fvd16 = summary["lora"]["distances"]["FVD_16"]
    assert (fvd16["name"], fvd16["clip_frames"], fvd16["videos"], fvd16["reference_videos"]) == ("FVD_16", 16, 2, 2)
    assert list(summary["full"]["distances"]) == ["FVD_16", "FID_17"]
    assert summary["full"]["distances"]["FID_17"]["samples"] == 34
    # The features the distances came from, kept for resampling (a study's bootstrap): row i is the same item.
    features = result.features
    assert set(features.fvd[16]) == {"reference", "base", "lora", "full"} and features.fvd[16]["lora"].shape == (2, 400)
    assert frechet.frechet_distance(features.fvd[16]["lora"], features.fvd[16]["reference"]) == fvd16["value"]
    from cinescene import fvd

    clips = [media.read_video(eval_set / f"ref{i}.mp4").frames for i in range(2)]
    assert np.array_equal(features.fvd[16]["reference"], fvd.features(fvd.load_i3d(i3d_standin), clips, 16))
    assert [f.shape for f in features.fid["full"]] == [(17, 2048)] * 2 and features.fid_frames == 17
    assert result.summary["distance_notes"] == [
        "FVD_128, FID_128 skipped: the generated videos have 17 frames, 128 needed (--frames 129 or more)"]
    assert summary["base"]["metrics"]["flicker"]["n"] == 3
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "| full |" in text and "Uncalibrated" in text
    assert "| FVD_16 | FID_17 |" in text and "(n=2) |" in text and "FVD_128, FID_128 skipped" in text
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["variants"]["lora"]["distances"] == summary["lora"]["distances"]
    assert (tmp_path / "out" / "videos" / "full" / "0002.mp4").is_file()
    by_variant = {r["variant"]: r for r in rows if r["item"] == "0"}
    assert by_variant["base"]["clip_text"] != by_variant["full"]["clip_text"]


def test_summary_shows_fvd_and_fid_by_clip_length_with_the_video_count():
    def entry(metric, frames, value):
        return frechet.DistanceResult(metric, frames, value, 24, 30, 24, 30, "p").to_dict()

    summary = {"networks": {}, "uncalibrated": [], "distance_notes": [], "variants": {
        "base": {"videos": 24, "metrics": {}, "distances": {d["name"]: d for d in (
            entry("FVD", 16, 310.5), entry("FVD", 128, 402.25), entry("FID", 128, 35.0))}},
        "look": {"videos": 24, "metrics": {}, "distances": {"FVD_16": entry("FVD", 16, 250.125)}},
    }}
    text = evaluate.summary_markdown(summary)
    assert "| variant | videos | FVD_16 | FVD_128 | FID_128 |" in text
    assert "| base | 24 | 310.50 (n=24) | 402.25 (n=24) | 35.00 (n=24) |" in text
    assert "| look | 24 | 250.12 (n=24) | n/a | n/a |" in text
    assert "against 30 reference clips" in text and "FVD-" not in text


class _Networks:
    """What summarize reads of the metric networks: random CLIP, pretrained LPIPS."""

    clip_calibrated, lpips_calibrated = False, True

    def describe(self):
        return {"clip": {"weights": "random"}}


def test_summary_means_and_intervals_of_look_and_camera():
    def row(variant, item, look, dx, dy, zoom):
        return {"variant": variant, "item": item, **dict.fromkeys(evaluate.METRICS), "flicker": 0.9,
                "clip_text": 0.2, "look_distance": look, "camera_dx": dx, "camera_dy": dy, "camera_zoom": zoom}

    rows = [row("base", 0, 400.0, 0.1, 0.0, 1.0), row("base", 1, None, -0.1, 0.2, 1.0),
            row("base", 2, 500.0, 0.0, -0.2, 1.0),
            row("pan", 0, 100.0, 3.1, 0.1, 1.001), row("pan", 1, None, 2.9, -0.1, 0.999),
            row("pan", 2, 140.0, 3.0, 0.0, 1.0)]
    summary = evaluate.summarize(rows, [evaluate.Variant("base"), evaluate.Variant("pan")], _Networks())
    pan = summary["variants"]["pan"]["metrics"]
    assert pan["look_distance"]["n"] == 2 and pan["look_distance"]["mean"] == pytest.approx(120.0)
    assert pan["look_distance"]["ci95"] == pytest.approx(list(evaluate.interval95([100.0, 140.0])[1:]))
    assert pan["camera_dx"]["mean"] == pytest.approx(3.0) and pan["camera_dx"]["n"] == 3
    assert summary["variants"]["base"]["metrics"]["camera_dy"]["mean"] == pytest.approx(0.0)
    assert pan["look_distance"]["calibrated"] and pan["camera_zoom"]["calibrated"]
    assert summary["uncalibrated"] == ["clip_consistency", "clip_image", "clip_text"]  # CLIP only: no network here
    text = evaluate.summary_markdown({**summary, "distance_notes": []})
    assert "| variant | videos | clip_text | flicker | look_distance | camera_dx | camera_dy | camera_zoom |" in text
    assert "| pan | 3 | 0.2000 [0.2000, 0.2000] | 0.9000 [0.9000, 0.9000] | 120.0000 [" in text
    assert "+ pans right" in text and "lower for lpips_temporal, lpips_reference, look_distance" in text
