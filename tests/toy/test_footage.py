"""The toy footage generator: deterministic, independent controls, captions, datasets the trainer reads."""

from __future__ import annotations

import numpy as np
import pytest

from cinescene import camera, media
from cinescene.errors import InputError
from cinescene.toy import footage
from cinescene.training import dataset

H, W, T = 64, 112, 9


def scene(i: int) -> footage.Scene:
    return footage.random_scene(np.random.default_rng([123, i]), W / H)


def test_render_is_deterministic_and_sized():
    a = footage.render_clip(scene(0), "teal-orange", "pan-left", T, H, W, seed=3)
    b = footage.render_clip(scene(0), "teal-orange", "pan-left", T, H, W, seed=3)
    assert a.dtype == np.uint8 and a.shape == (T, H, W, 3)
    assert np.array_equal(a, b)
    with pytest.raises(InputError, match="multiples of 16"):
        footage.render_clip(scene(0), height=50, width=W)


def test_first_frame_does_not_depend_on_the_move():
    firsts = [footage.render_clip(scene(1), "neutral", move, 5, H, W)[0] for move in footage.MOVES]
    assert all(np.array_equal(firsts[0], f) for f in firsts[1:])


def test_any_look_combines_with_any_move():
    s = scene(3)
    for look in footage.LOOKS:
        clip = footage.render_clip(s, look, "pan-right", 5, H, W)
        assert camera.measure(clip).label == "pan-right", look


def test_captions_name_content_and_optionally_the_move():
    s = scene(2)
    text = footage.caption(s, "pan-right")
    assert text.endswith(", " + footage.MOVE_PHRASES["pan-right"])
    assert footage.caption(s, "pan-right", with_move=False) == footage.describe(s)
    for shape in s.shapes:
        assert f"{shape.colour} {shape.kind}" in text


def test_dataset_is_what_the_trainer_reads(tmp_path):
    spec = footage.ToyDataset(looks=("neutral", "sepia"), moves=("pan-right", "tilt-down"), clips=4, stills=2,
                              frames=T, seed=1)
    entries = footage.make_dataset(tmp_path / "set", spec)
    assert [e["kind"] for e in entries] == ["clip"] * 4 + ["still"] * 2
    for entry in entries[:4]:
        video = media.read_video(tmp_path / "set" / entry["file"])
        assert video.frames.shape == (T, H, W, 3) and video.fps == 16
        assert camera.measure(video.frames).label == entry["move"]
        assert (tmp_path / "set" / entry["file"]).with_suffix(".txt").read_text().strip() == entry["caption"]
    scanned = dataset.scan(tmp_path / "set", stage="both", window=T, val_fraction=0)
    assert len(scanned.train) == 6 and not scanned.skipped


def test_caption_modes(tmp_path):
    never = footage.make_dataset(tmp_path / "a", footage.ToyDataset(moves=("pan-left",), clips=2, stills=1, frames=5,
                                                                   move_captions="never"))
    assert all("camera" not in e["caption"] for e in never)
    both = footage.make_dataset(tmp_path / "b", footage.ToyDataset(moves=("static",), clips=4, frames=5,
                                                                  move_captions="static-both"))
    assert sum("camera is still" in e["caption"] for e in both) == 2


def test_the_same_spec_writes_the_same_files(tmp_path):
    from conftest import files_under

    spec = footage.ToyDataset(looks=("bleach-bypass",), moves=("dolly-in",), clips=2, stills=1, frames=5, seed=4)
    footage.make_dataset(tmp_path / "a", spec)
    footage.make_dataset(tmp_path / "b", spec)
    assert files_under(tmp_path / "a") == files_under(tmp_path / "b")


@pytest.mark.parametrize("spec, message", [
    (footage.ToyDataset(looks=("velvet",)), "unknown look 'velvet'"),
    (footage.ToyDataset(moves=("orbit",)), "unknown camera move 'orbit'"),
    (footage.ToyDataset(frames=6), "4k\\+1"),
    (footage.ToyDataset(height=48), "at least 64"),
    (footage.ToyDataset(clips=0, stills=0), "give 1 to 10,000"),
])
def test_bad_specs_are_refused_before_any_file(tmp_path, spec, message):
    with pytest.raises(InputError, match=message):
        footage.make_dataset(tmp_path / "set", spec)
    assert not list(tmp_path.iterdir())


def test_an_existing_folder_is_left_alone(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="not an empty folder"):
        footage.make_dataset(tmp_path / "set", footage.ToyDataset(clips=1, frames=5))
    assert [p.name for p in (tmp_path / "set").iterdir()] == ["mine.txt"]


def test_toy_data_command(tmp_path, capsys):
    from cinescene import cli

    assert cli.main(["toy-data", str(tmp_path / "demo"), "--demo", "--clips", "2", "--stills", "1"]) == 0
    assert "wrote 2 clips and 1 stills (teal-orange; pan-right" in capsys.readouterr().out
    captions = [p.read_text() for p in sorted((tmp_path / "demo").glob("*.txt"))]
    assert len(captions) == 3 and not any("camera" in c for c in captions)  # the demo's captions name no move
    assert cli.main(["toy-data", str(tmp_path / "demo")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
