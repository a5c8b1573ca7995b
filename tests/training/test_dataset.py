from __future__ import annotations

import json

import pytest
from PIL import Image

from cinescene import media
from cinescene.errors import InputError
from cinescene.training import dataset

from footage import make_dataset, moving_clip


def test_scan_finds_clips_stills_and_captions(tmp_path):
    root = make_dataset(tmp_path / "d", clips=3, stills=2, frames=24)
    ds = dataset.scan(root, stage="both", window=9, val_fraction=0)
    assert sorted(i.name for i in ds.train) == ["clip0.mp4", "clip1.mp4", "clip2.mp4", "still0.png", "still1.png"]
    clip = next(i for i in ds.train if i.kind == "clip")
    assert (clip.width, clip.height, clip.frames, clip.fps) == (96, 64, 24, 16.0)
    assert clip.frames_at(16) == 24 and clip.frames_at(8) == 12
    assert clip.caption.startswith("a red blob") and len(clip.sha256) == 64


def test_metadata_captions_and_txt_precedence(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    for name in ("a.mp4", "b.mp4"):
        media.write_video(moving_clip(12), root / name)
    (root / "metadata.csv").write_text("file,caption\na.mp4,from csv\nb.mp4,also from csv\n")
    (root / "b.txt").write_text("from txt")
    ds = dataset.scan(root, stage="style", val_fraction=0)
    assert {i.name: i.caption for i in ds.train} == {"a.mp4": "from csv", "b.mp4": "from txt"}
    (root / "metadata.csv").unlink()
    (root / "metadata.jsonl").write_text(json.dumps({"file_name": "a.mp4", "text": "from jsonl"}) + "\n")
    assert {i.name: i.caption for i in dataset.scan(root, stage="style", val_fraction=0).train}["a.mp4"] == "from jsonl"


def test_validation_folder_and_held_out_fraction(tmp_path):
    with_folder = make_dataset(tmp_path / "a", clips=2, stills=0, validation=True)
    ds = dataset.scan(with_folder, stage="motion", window=9)
    assert [i.name for i in ds.validation] == ["clip0.mp4"] and len(ds.train) == 2
    held = make_dataset(tmp_path / "b", clips=4, stills=2)
    first = dataset.scan(held, stage="motion", window=9, val_fraction=0.2)
    again = dataset.scan(held, stage="motion", window=9, val_fraction=0.2)
    assert len(first.validation) == 1 and first.validation[0].kind == "clip"
    assert first.validation == again.validation  # chosen by content hash, stable
    # Validation samples two items by default: hold out two where three quarters are left to train on.
    eight = make_dataset(tmp_path / "c", clips=6, stills=2, frames=12)
    one = dataset.scan(eight, stage="motion", window=9, val_fraction=0.1)
    two = dataset.scan(eight, stage="motion", window=9, val_fraction=0.1, min_held_out=2)
    assert len(one.validation) == 1 and len(two.validation) == 2 and len(two.train) == 6
    assert one.validation[0] in two.validation and all(i.kind == "clip" for i in two.validation)
    # Six items: two held out would leave fewer than three quarters to train on.
    assert len(dataset.scan(held, stage="motion", window=9, val_fraction=0.1, min_held_out=2).validation) == 1


def _bad_dataset(root):
    make_dataset(root, clips=2, stills=1, frames=24)
    data_bytes = (root / "clip0.mp4").read_bytes()
    (root / "clip0.mp4").write_bytes(data_bytes[: len(data_bytes) // 2])  # truncated
    media.write_video(moving_clip(5), root / "short.mp4")  # shorter than the window
    (root / "short.txt").write_text("too short")
    media.write_video(moving_clip(24), root / "nocap.mp4")  # no caption
    Image.new("RGB", (40, 40)).save(root / "tiny.png")  # absurd size
    (root / "tiny.txt").write_text("small")
    (root / "junk.mov").write_bytes(b"not a video at all")
    (root / "junk.txt").write_text("junk")
    (root / "weird.txt").write_text("caption without media is fine")
    return root


def test_every_bad_file_is_named_with_its_reason(tmp_path):
    root = _bad_dataset(tmp_path / "d")
    with pytest.raises(dataset.DatasetError) as info:
        dataset.scan(root, stage="motion", window=9)
    reasons = dict(info.value.problems)
    assert "truncated" in reasons["clip0.mp4"]
    assert "shorter than the window" in reasons["short.mp4"]
    assert "no caption" in reasons["nocap.mp4"]
    assert "absurd size" in reasons["tiny.png"]
    assert "not a readable video" in reasons["junk.mov"]
    assert len(reasons) == 5 and "--skip-bad" in str(info.value)


def test_skip_bad_keeps_the_rest_and_reports_them(tmp_path):
    root = _bad_dataset(tmp_path / "d")
    ds = dataset.scan(root, stage="motion", window=9, skip_bad=True, val_fraction=0)
    assert sorted(i.name for i in ds.train) == ["clip1.mp4", "still0.png"]
    assert {s["file"] for s in ds.summary()["skipped"]} == {"clip0.mp4", "short.mp4", "nocap.mp4", "tiny.png",
                                                              "junk.mov"}


def test_metadata_problems(tmp_path):
    root = make_dataset(tmp_path / "d", clips=1, stills=0)
    (root / "metadata.csv").write_text("file,caption\nghost.mp4,boo\n../etc/passwd,x\n")
    with pytest.raises(dataset.DatasetError, match="missing file 'ghost.mp4'.*must be a file name"):
        dataset.scan(root, stage="style")


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        dataset.scan(tmp_path / "nope", stage="style")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no usable"):
        dataset.scan(tmp_path / "empty", stage="style")
    stills_only = make_dataset(tmp_path / "stills", clips=0, stills=2)
    with pytest.raises(InputError, match="motion stage needs clips"):
        dataset.scan(stills_only, stage="motion")
