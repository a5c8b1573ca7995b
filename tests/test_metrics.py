from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cinescene import media, metrics
from cinescene.errors import InputError


def video(frames=6, h=48, w=64, seed=0):
    return (np.random.default_rng(seed).random((frames, h, w, 3)) * 255).astype(np.uint8)


def test_lpips_of_a_video_with_itself_is_zero(metric_nets):
    v = video()
    assert metrics.lpips_pair(metric_nets, v, v).values == pytest.approx([0.0] * 6, abs=1e-6)


def test_lpips_equals_the_package_called_frame_by_frame(metric_nets):
    a, b = video(seed=1), video(seed=2)
    ours = metrics.lpips_pair(metric_nets, a, b).values
    direct = []
    with torch.no_grad():
        for fa, fb in zip(a, b):
            x = torch.from_numpy(fa).permute(2, 0, 1)[None].float() / 127.5 - 1
            y = torch.from_numpy(fb).permute(2, 0, 1)[None].float() / 127.5 - 1
            direct.append(float(metric_nets.lpips(x, y)))
    assert ours == pytest.approx(direct, rel=1e-5, abs=1e-7)


def test_clip_sim_equals_a_direct_open_clip_computation(metric_nets):
    v, prompt = video(frames=4), "a lighthouse at dusk"
    still = Image.fromarray(video(frames=1, seed=9)[0])
    scores = metrics.score_video(metric_nets, v, prompt=prompt, image=still)
    with torch.no_grad():
        clip, pre = metric_nets.clip, metric_nets.clip_preprocess
        frames = clip.encode_image(torch.stack([pre(Image.fromarray(f)) for f in v])).float()
        frames = frames / frames.norm(dim=-1, keepdim=True)
        text = clip.encode_text(metric_nets.tokenizer([prompt])).float()[0]
        image = clip.encode_image(pre(still)[None]).float()[0]
    assert scores["clip_text"].values == pytest.approx((frames @ (text / text.norm())).tolist(), abs=1e-5)
    assert scores["clip_image"].values == pytest.approx((frames @ (image / image.norm())).tolist(), abs=1e-5)
    assert scores["clip_consistency"].values == pytest.approx((frames[1:] * frames[:-1]).sum(-1).tolist(), abs=1e-5)


def test_constant_video_is_perfectly_steady(metric_nets):
    still = np.repeat(video(frames=1)[:1], 5, axis=0)
    scores = metrics.score_video(metric_nets, still)
    assert scores["clip_consistency"].mean == pytest.approx(1.0, abs=1e-5)
    assert scores["flicker"].mean == 1.0
    assert scores["lpips_temporal"].mean == pytest.approx(0.0, abs=1e-6)
    assert len(scores["flicker"].values) == 4  # a series per consecutive pair


def test_flicker_matches_vbench_formula():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1] = 10
    frames[2] = 40
    assert metrics.flicker(frames).values == pytest.approx([(255 - 10) / 255, (255 - 30) / 255])


def test_random_weights_are_marked_uncalibrated_everywhere(metric_nets):
    result = metrics.score_pair(metric_nets, video(seed=1), video(seed=2), prompt="x")
    assert set(result["uncalibrated"]) == {"clip_text", "clip_consistency", "lpips_temporal", "lpips_pair"}
    assert result["videos"]["base"]["clip_text"]["calibrated"] is False
    assert result["videos"]["base"]["flicker"]["calibrated"] is True
    assert result["networks"]["clip"]["weights"] == "random"
    assert len(result["videos"]["tuned"]["clip_text"]["series"]) == 6
    assert result["difference"]["flicker"] == pytest.approx(
        result["videos"]["tuned"]["flicker"]["mean"] - result["videos"]["base"]["flicker"]["mean"])


@pytest.mark.parametrize("b, message", [(video(frames=5), "5 frames"), (video(w=80), "80x48")])
def test_mismatched_videos_are_refused(metric_nets, b, message):
    with pytest.raises(InputError, match=message):
        metrics.lpips_pair(metric_nets, video(), b)


def test_one_frame_video_for_temporal_metrics(metric_nets):
    with pytest.raises(InputError, match="at least 2"):
        metrics.lpips_temporal(metric_nets, video(frames=1))
    with pytest.raises(InputError, match="at least 2"):
        metrics.flicker(video(frames=1))
    with pytest.raises(InputError, match="at least 2"):
        metrics.score_video(metric_nets, video(frames=1))


def test_pretrained_weights_offline_give_a_clear_error_without_network():
    with pytest.raises(InputError, match="not available here|AlexNet weights"):
        metrics.load_networks(metrics.MetricsConfig(weights="pretrained"))


def test_fallback_offline_loads_random_and_says_so():
    nets = metrics.load_networks(metrics.MetricsConfig(weights="fallback"))
    assert not nets.clip_calibrated and not nets.lpips_calibrated
    assert any("uncalibrated" in note for note in nets.notes)


def test_pickle_clip_weights_are_refused():
    with pytest.raises(InputError, match="safetensors"):
        metrics.load_networks(metrics.MetricsConfig(clip_pretrained="/tmp/clip.bin"))


def test_networks_are_cached(metric_nets):
    assert metrics.get_networks(metrics.MetricsConfig(weights="random")) is metric_nets


def test_unreadable_video_for_metrics(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"nope")
    with pytest.raises(InputError, match="not a readable video"):
        media.read_video(tmp_path / "x.mp4")


# -- camera motion and look distance (no network: always calibrated) ------------------------------------------


def toy_clip(move="static", look="neutral", frames=5, h=64, w=112, speed=None, seed=1):
    from cinescene.toy import footage

    scene = footage.random_scene(np.random.default_rng(seed), w / h)
    return footage.render_clip(scene, look, move, frames, h, w, speed=speed)


@pytest.mark.parametrize("size", [(64, 112), (160, 256)])  # the second is fitted downscaled
def test_camera_motion_in_the_videos_own_pixels_with_the_cameras_sign(size):
    h, w = size
    pan = metrics.camera_motion(toy_clip("pan-right", frames=4, h=h, w=w, speed=3.0))
    assert pan.calibrated and pan.values["label"] == "pan-right"
    assert pan.values["dx"] == pytest.approx(3.0, abs=0.1) and abs(pan.values["dy"]) < 0.1
    assert len(pan.values["pairs"]) == 3 and pan.values["pairs"][0][0] == pytest.approx(3.0, abs=0.15)
    assert (pan.values["fitted_at"][0] < h) == (h * w > metrics.CAMERA_MAX_PIXELS)
    tilt = metrics.camera_motion(toy_clip("tilt-up", frames=3, h=h, w=w, speed=2.0)).values
    assert tilt["label"] == "tilt-up" and tilt["dy"] == pytest.approx(-2.0, abs=0.1)
    dolly = metrics.camera_motion(toy_clip("dolly-in", frames=3, h=h, w=w, speed=0.02)).values
    assert dolly["label"] == "dolly-in" and dolly["zoom"] == pytest.approx(1.02, abs=0.003)


def test_look_distance_and_lpips_to_a_reference(metric_nets):
    clip = toy_clip("pan-right", frames=3)
    plain = metrics.score_video(metric_nets, clip)
    assert "look" not in plain and "lpips_reference" not in plain  # nothing to compare with
    same = metrics.score_video(metric_nets, clip, reference=clip)
    assert same["look"].values["distance"] == pytest.approx(0.0, abs=1e-6)
    assert same["lpips_reference"].values == pytest.approx([0.0] * 3, abs=1e-6)
    # A graded reference of another size and length: fitted to the video's framing, compared on 2 frames.
    graded = toy_clip("static", "teal-orange", frames=2, h=96, w=176)
    scores = metrics.score_video(metric_nets, clip, reference=graded)
    assert scores["look"].values["distance"] > 150 and scores["look"].calibrated
    assert len(scores["lpips_reference"].values) == 2
    assert scores["look"].values["saturation"] != pytest.approx(scores["look"].values["reference_saturation"])
    numbers = metrics.numbers(scores)
    assert numbers["look_distance"] == scores["look"].values["distance"]
    assert numbers["camera_dx"] == scores["camera"].values["dx"] and numbers["flicker"] == scores["flicker"].mean


def test_pair_report_has_camera_look_and_their_differences(metric_nets):
    from cinescene import look

    base, tuned = toy_clip("pan-right", frames=3), toy_clip("tilt-down", "sepia", frames=3)
    result = metrics.score_pair(metric_nets, base, tuned, prompt="x")
    cams = {label: result["videos"][label]["camera"] for label in ("base", "tuned")}
    assert cams["base"]["label"] == "pan-right" and cams["tuned"]["label"] == "tilt-down"
    assert cams["base"]["calibrated"] is True and len(cams["tuned"]["pairs"]) == 2
    assert result["difference"]["camera_dy"] == pytest.approx(cams["tuned"]["dy"] - cams["base"]["dy"])
    assert result["pair"]["look_pair"]["distance"] == pytest.approx(look.look_distance(tuned, base)["distance"])
    assert result["pair"]["look_pair"]["calibrated"] is True
    assert not {"camera", "look_pair"} & set(result["uncalibrated"])
