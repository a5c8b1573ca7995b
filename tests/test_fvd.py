from __future__ import annotations

import numpy as np
import pytest
import torch

from cinescene import frechet, fvd
from cinescene.errors import InputError


def clip(seed: int, frames: int = 16, h: int = 40, w: int = 56) -> np.ndarray:
    return (np.random.default_rng(seed).random((frames, h, w, 3)) * 255).astype(np.uint8)


def test_fvd_16_through_a_torchscript_detector(i3d_standin):
    i3d = fvd.load_i3d(i3d_standin)
    assert fvd.load_i3d(i3d_standin) is i3d  # loaded once
    generated = [clip(s) for s in range(4)]
    reference = [clip(s, h=64, w=48) for s in range(10, 13)]
    result = fvd.fvd(i3d, generated, reference)
    # Named by the clip length, as StyleGAN-V does; the video counts stand beside the name.
    assert result.name == "FVD_16" and result.value > 0
    assert (result.videos, result.reference_videos, result.clip_frames) == (4, 3, 16)
    assert result.to_dict()["name"] == "FVD_16" and result.to_dict()["videos"] == 4
    assert fvd.fvd(i3d, generated, generated).value == pytest.approx(0, abs=1e-9)
    # The number is the Frechet distance of the detector's outputs on the preprocessed clips.
    def direct(videos):
        with torch.no_grad():
            return i3d(torch.stack([fvd.preprocess(v) for v in videos]), rescale=False, resize=False,
                       return_features=True).double().numpy()

    assert result.value == pytest.approx(frechet.frechet_distance(direct(generated), direct(reference)), rel=1e-6)


def test_fvd_128_on_128_frame_clips(i3d_standin):
    i3d = fvd.load_i3d(i3d_standin)
    generated = [clip(s, frames=130, h=24, w=32) for s in range(2)]
    reference = [clip(s, frames=128, h=24, w=32) for s in range(10, 12)]
    result = fvd.fvd(i3d, generated, reference, clip_frames=128)
    assert result.name == "FVD_128" and result.clip_frames == 128 and result.videos == 2 and result.value > 0
    # The stand-in sees the clip in time quarters: changing frames 16-127 changes what FVD_128 sees, not FVD_16.
    changed = [np.concatenate([g[:16], 255 - g[16:]]) for g in generated]
    assert not np.allclose(fvd.features(i3d, changed, 128), fvd.features(i3d, generated, 128))
    assert np.array_equal(fvd.features(i3d, changed, 16), fvd.features(i3d, generated, 16))


def test_short_clips_are_a_clear_error(i3d_standin):
    i3d = fvd.load_i3d(i3d_standin)
    long = [clip(s, frames=128, h=24, w=32) for s in range(2)]
    with pytest.raises(InputError, match="^FVD_128 uses 128-frame clips; generated video 2 of 2 has only 81 frames$"):
        fvd.fvd(i3d, [long[0], clip(5, frames=81, h=24, w=32)], long, clip_frames=128)
    with pytest.raises(InputError, match="FVD_16 uses 16-frame clips; reference video 1 of 2 has only 9 frames"):
        fvd.fvd(i3d, [clip(0), clip(1)], [clip(2, frames=9), clip(3)])


def test_preprocessing_follows_stylegan_v():
    out = fvd.preprocess(clip(0, frames=20, h=90, w=160))
    assert out.shape == (3, 16, 224, 224)
    assert out.min() >= -1 and out.max() <= 1
    # A flat grey stays flat: scale and crop only, values mapped from [0, 255] to [-1, 1].
    grey = fvd.preprocess(np.full((16, 90, 160, 3), 51, np.uint8))
    assert torch.allclose(grey, torch.full_like(grey, 51 / 255 * 2 - 1), atol=1e-6)
    assert fvd.preprocess(clip(0, frames=130, h=24, w=32), clip_frames=128).shape == (3, 128, 224, 224)


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv("CINESCENE_I3D", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(InputError) as err:
        fvd.load_i3d()
    message = str(err.value)
    assert str(tmp_path / "home" / ".cache" / "cinescene" / "i3d_torchscript.pt") in message
    assert "--i3d" in message and "CINESCENE_I3D" in message and "download" in message
    monkeypatch.setenv("CINESCENE_I3D", str(tmp_path / "elsewhere.pt"))
    with pytest.raises(InputError, match="elsewhere.pt"):
        fvd.load_i3d()


def test_the_environment_variable_points_at_the_file(i3d_standin, monkeypatch):
    monkeypatch.setenv("CINESCENE_I3D", str(i3d_standin))
    assert fvd.load_i3d() is fvd.load_i3d(i3d_standin)


def test_refusals(tmp_path, i3d_standin):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a TorchScript I3D"):
        fvd.load_i3d(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "state.pt")  # a pickle-based checkpoint, not TorchScript
    with pytest.raises(InputError, match="not a TorchScript I3D"):
        fvd.load_i3d(tmp_path / "state.pt")
    (tmp_path / "i3d.pkl").write_bytes(b"\x80\x04.")
    with pytest.raises(InputError, match="is a pickle"):
        fvd.load_i3d(tmp_path / "i3d.pkl")
    i3d = fvd.load_i3d(i3d_standin)
    with pytest.raises(InputError, match="at least 2"):
        fvd.fvd(i3d, [clip(0)], [clip(1), clip(2)])


def test_a_network_with_other_outputs_is_refused(tmp_path):
    class Other(torch.nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                    return_features: bool = True) -> torch.Tensor:
            return x.mean(dim=(2, 3, 4))

    torch.jit.script(Other()).save(str(tmp_path / "other.pt"))
    with pytest.raises(InputError, match=r"shape \(2, 3\), expected \(2, 400\): is it i3d_torchscript.pt"):
        fvd.fvd(fvd.load_i3d(tmp_path / "other.pt"), [clip(0), clip(1)], [clip(2), clip(3)])
