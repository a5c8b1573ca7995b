"""A study's held-out items: the trainer's held-out clips by default, a folder, or a set file; every seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cinescene import evaluate, media
from cinescene.errors import InputError
from cinescene.study import config as study_config
from cinescene.study import items
from cinescene.training.dataset import scan

from conftest import make_still
from footage import make_dataset


def setup(data, **study):
    config = study_config.build({"study": {"eval_seeds": [3, 4], **study},
                                 "train": {"model": "tiny", "data": str(data), "stage": "motion", "window": 9}})
    train = next(iter(config.arm_configs("s").values()))
    dataset = scan(data, stage="motion", window=9, val_fraction=train.val_fraction, min_held_out=train.val_items)
    return config, train, dataset


def test_by_default_the_trainers_held_out_clips_under_every_seed(tmp_path):
    data = make_dataset(tmp_path / "data", clips=2, stills=1, frames=12)
    make_dataset(data / "validation", clips=2, stills=1, frames=12)
    held = items.held_out(*setup(data), tmp_path / "study")
    assert not (tmp_path / "study").exists()  # nothing is written before the study has checked its folder
    assert [(i.image.name, i.reference.name if i.reference else None) for i in held.items] == \
        [("0000.png", "clip0.mp4"), ("0001.png", "clip1.mp4"), ("still0.png", None)]
    assert held.items[0].prompt == "a red blob drifts across a dusk gradient, take 0"
    assert {i.reference.parent.name for i in held.items if i.reference} == {"validation"}
    assert held.items[2].image == (data / "validation" / "still0.png").resolve()
    assert [(i.image.name, i.seed) for i in held.evaluation][:3] == [("0000.png", 3), ("0000.png", 4), ("0001.png", 3)]
    assert [held.item_of(p) for p in range(6)] == [0, 0, 1, 1, 2, 2]
    assert held.source == f"held out of {data}" and held.files[1]["clip"] == "clip1.mp4"
    held.write(tmp_path / "study")
    first = media.read_video(data / "validation" / "clip1.mp4", max_frames=1).frames[0]
    assert np.array_equal(np.asarray(Image.open(held.items[1].image)), first)
    # set.jsonl holds the items as eval reads them.
    assert evaluate.read_set(tmp_path / "study" / "held_out" / "set.jsonl") == held.items


def test_a_folder_or_a_set_file_and_at_most_max_items(tmp_path):
    data = make_dataset(tmp_path / "data", clips=4, stills=0, frames=12)
    other = make_dataset(tmp_path / "other", clips=3, stills=0, frames=12)
    held = items.held_out(*setup(data, held_out=str(other), max_items=2), tmp_path / "s")
    assert [i.reference.name for i in held.items] == ["clip0.mp4", "clip1.mp4"] and held.source == str(other)
    make_still(tmp_path / "a.png")
    (tmp_path / "set.jsonl").write_text(json.dumps({"image": "a.png", "prompt": "a harbour",
                                                    "reference": "other/clip2.mp4"}) + "\n")
    held = items.held_out(*setup(data, held_out=str(tmp_path / "set.jsonl")), tmp_path / "s")
    assert [(i.image.name, i.prompt, i.reference.name) for i in held.items] == [("a.png", "a harbour", "clip2.mp4")]
    assert held.files[0]["reference"] == "clip2.mp4" and len(held.evaluation) == 2


def test_no_held_out_items_is_a_clear_error(tmp_path):
    data = make_dataset(tmp_path / "data", clips=2, stills=0, frames=12)  # too few to hold any out
    with pytest.raises(InputError, match="has no held-out items .* give the study a held_out folder or set file"):
        items.held_out(*setup(data), tmp_path / "s")
