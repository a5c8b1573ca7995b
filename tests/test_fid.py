from __future__ import annotations

import numpy as np
import pytest
import torch

from cinescene import fid, frechet
from cinescene.errors import InputError


def clip(seed: int, frames: int = 20, h: int = 24, w: int = 40) -> np.ndarray:
    return (np.random.default_rng(seed).random((frames, h, w, 3)) * 255).astype(np.uint8)


def direct(inception: torch.jit.ScriptModule, frames: np.ndarray) -> np.ndarray:
    """The calling convention of StyleGAN2-ADA's FID: uint8 NCHW in one call, return_features=True."""
    with torch.no_grad():
        return inception(torch.from_numpy(frames).permute(0, 3, 1, 2), return_features=True).double().numpy()


def test_frame_features_follow_stylegan2_ada(inception_standin):
    inception = fid.load_inception(inception_standin)
    assert fid.load_inception(inception_standin) is inception  # loaded once
    frames = clip(0, frames=fid.FRAMES_PER_BATCH + 7)  # more than one batch
    feats = fid.frame_features(inception, frames)
    assert feats.shape == (len(frames), 2048)
    assert np.allclose(feats, direct(inception, frames), atol=1e-5)


def test_fid_128_is_the_frechet_distance_of_the_first_128_frames(inception_standin):
    inception = fid.load_inception(inception_standin)
    generated = [clip(s, frames=130) for s in range(2)]
    reference = [clip(s, frames=128, h=32, w=32) for s in range(10, 13)]
    result = fid.fid(inception, generated, reference, 128)
    assert result.name == "FID_128" and result.value > 0
    assert (result.videos, result.reference_videos, result.samples, result.reference_samples) == (2, 3, 256, 384)
    expected = frechet.frechet_distance(np.concatenate([direct(inception, g[:128]) for g in generated]),
                                        np.concatenate([direct(inception, r) for r in reference]))
    assert result.value == pytest.approx(expected, rel=1e-6)
    # Frames after the clip do not count.
    later = [np.concatenate([g[:128], 255 - g[128:]]) for g in generated]
    assert fid.fid(inception, later, reference, 128).value == pytest.approx(result.value, rel=1e-9)
    assert fid.fid(inception, generated, generated, 128).value == pytest.approx(0, abs=1e-9)


def test_features_are_computed_once_for_several_clip_lengths(inception_standin):
    inception = fid.load_inception(inception_standin)
    generated, reference = [clip(s) for s in range(2)], [clip(s) for s in range(5, 7)]
    gen, ref = fid.video_features(inception, generated), fid.video_features(inception, reference)
    for frames in (8, 20):
        assert fid.fid_from_features(gen, ref, frames).value == pytest.approx(
            fid.fid(inception, generated, reference, frames).value, rel=1e-9)


def test_short_clips_are_a_clear_error(inception_standin):
    inception = fid.load_inception(inception_standin)
    with pytest.raises(InputError, match="^FID_128 uses 128-frame clips; generated video 1 of 2 has only 81 frames$"):
        fid.fid(inception, [clip(0, frames=81), clip(1, frames=128)], [clip(2, frames=128)] * 2, 128)
    with pytest.raises(InputError, match="at least 2 generated and 2 reference videos"):
        fid.fid(inception, [clip(0)], [clip(1), clip(2)], 16)
    with pytest.raises(InputError, match="uint8"):
        fid.frame_features(inception, clip(0).astype(np.float32))


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv("CINESCENE_INCEPTION", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(InputError) as err:
        fid.load_inception()
    message = str(err.value)
    assert str(tmp_path / "home" / ".cache" / "cinescene" / "inception-2015-12-05.pt") in message
    assert "--inception" in message and "CINESCENE_INCEPTION" in message
    assert "nvlabs-fi-cdn.nvidia.com" in message and "\n" not in message
    monkeypatch.setenv("CINESCENE_INCEPTION", str(tmp_path / "elsewhere.pt"))
    with pytest.raises(InputError, match="elsewhere.pt"):
        fid.load_inception()


def test_the_environment_variable_points_at_the_file(inception_standin, monkeypatch):
    monkeypatch.setenv("CINESCENE_INCEPTION", str(inception_standin))
    assert fid.load_inception() is fid.load_inception(inception_standin)


def test_refusals(tmp_path, i3d_standin):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "state.pt")
    with pytest.raises(InputError, match="not a TorchScript Inception"):
        fid.load_inception(tmp_path / "state.pt")
    (tmp_path / "inception.pkl").write_bytes(b"\x80\x04.")
    with pytest.raises(InputError, match="is a pickle"):
        fid.load_inception(tmp_path / "inception.pkl")
    # A TorchScript file with 2048 outputs but not the network: an image-sized answer of another size is refused.

    class Other(torch.nn.Module):
        def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            return img.float().mean(dim=(2, 3))

    torch.jit.script(Other()).save(str(tmp_path / "other.pt"))
    with pytest.raises(InputError, match=r"shape \(20, 3\), expected \(20, 2048\): is it inception-2015-12-05.pt"):
        fid.frame_features(fid.load_inception(tmp_path / "other.pt"), clip(0))
