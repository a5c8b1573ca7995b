from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from cinescene import loading, media, sampler, sweep
from cinescene.cli import main
from cinescene.errors import InputError
from cinescene.settings import AdapterChoice, ModelSpec, SampleSettings

import lora_fixtures as lf

SETTINGS = SampleSettings(prompt="a lighthouse", steps=3, frames=5, height=32, width=48, preset="preview", seed=5)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return lf.style_and_motion_library(tmp_path_factory.mktemp("sweep"))


def cell_frames(out, style: float, motion: float) -> np.ndarray:
    return media.read_video(out / "cells" / f"{sweep.cell_name((style, motion))}.mp4").frames


def plain(image, library, *adapters) -> np.ndarray:
    """A sample with a fresh pipeline, as ``python -m cinescene sample`` would make it."""
    return sampler.sample(loading.load_model(ModelSpec(model="tiny")), image,
                          dataclasses.replace(SETTINGS, adapters=adapters), library=library).frames


def test_corner_cells_are_the_base_and_the_plain_sample(tiny_model, library, still, tmp_path):
    image = media.load_image(still)
    # 1 before 0 in both lists: the 0/0 cell is sampled after the adapters were active, which is the hard case.
    grid = sweep.SweepGrid(style_strengths=(1.0, 0.0), motion_strengths=(1.0, 0.5, 0.0))
    events = []
    result = sweep.run(tiny_model, image, SETTINGS, "look", "push", grid, tmp_path / "out", library,
                       on_event=lambda e: events.append((e["task"], e["done"], e["total"])))
    cells = {(c["style"], c["motion"]): c for c in result.cells}
    assert list(cells) == [(1.0, 1.0), (1.0, 0.5), (1.0, 0.0), (0.0, 1.0), (0.0, 0.5), (0.0, 0.0)]
    out = tmp_path / "out"
    base = plain(image, library)
    assert np.array_equal(cell_frames(out, 0.0, 0.0), media.read_video(media.write_video(base, tmp_path / "b.mp4"))
                          .frames)  # the same bytes through the same encoder: bit for bit
    both = plain(image, library, AdapterChoice("style", "look"), AdapterChoice("motion", "push"))
    assert np.array_equal(cell_frames(out, 1.0, 1.0), media.read_video(media.write_video(both, tmp_path / "t.mp4"))
                          .frames)
    assert not np.array_equal(cell_frames(out, 1.0, 1.0), cell_frames(out, 0.0, 0.0))
    assert cells[(0.0, 0.0)]["look_to_base"] == 0 and cells[(1.0, 1.0)]["look_to_base"] > 0
    assert all({"dx", "dy", "zoom", "camera"} <= set(c) for c in cells.values())
    assert events[-1] == ("writing", 1, 1) and ("cell", 6, 6) in events
    grid_video = media.read_video(out / "grid.mp4")
    assert grid_video.frames.shape == (5, 2 * (32 + media.LABEL_HEIGHT), 3 * 48, 3)
    assert (out / "grid.png").stat().st_size > 0
    record = json.loads((out / "sweep.json").read_text())
    assert record["kind"] == "sweep" and record["sweep"]["style_adapter"] == "look" and len(record["cells"]) == 6
    rows = list(csv.DictReader(open(out / "cells.csv")))
    assert [(float(r["style"]), float(r["motion"])) for r in rows] == list(cells)


def test_ramps_reach_the_sampler_as_per_step_strengths():
    assert sweep.choices_for("look", "push", (0.8, 0.0), "up") == (AdapterChoice("style", "look", 0.0, 0.8),)
    assert sweep.choices_for("look", "push", (0.8, 0.5), "down") == (AdapterChoice("style", "look", 0.8, 0.0),
                                                                     AdapterChoice("motion", "push", 0.5, 0.0))
    assert sweep.choices_for("look", None, (0.0, 0.0), "constant") == ()


@pytest.mark.parametrize("grid, style, motion, message", [
    (sweep.SweepGrid(), None, None, "nothing to sweep"),
    (sweep.SweepGrid(style_strengths=()), "look", None, "style strengths are empty"),
    (sweep.SweepGrid(motion_strengths=(0.0, 1.0, 1.0)), "look", "push", "repeat a value"),
    (sweep.SweepGrid(), "look", None, "motion strengths other than 0 need a motion adapter"),
    (sweep.SweepGrid(style_strengths=tuple(range(7)), motion_strengths=tuple(range(7))), "a", "b", "more than 36"),
    (sweep.SweepGrid(ramp="wobble"), "look", "push", "ramp must be one of"),
])
def test_bad_grids_are_refused_before_any_work(grid, style, motion, message, tiny_model, library, still, tmp_path):
    with pytest.raises(InputError, match=message):
        sweep.run(tiny_model, media.load_image(still), SETTINGS, style, motion, grid, tmp_path / "out", library)
    assert not (tmp_path / "out").exists()


def test_cli_sweep(library, still, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["sweep", "--model", "tiny", "--image", str(still), "--prompt", "a lighthouse", "--steps", "2",
                 "--frames", "5", "--height", "32", "--width", "48", "--style", "look", "--style-strengths", "0", "1",
                 "--motion-strengths", "0", "--loras", str(library.root), "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("style,motion,look_to_base") and (out / "grid.mp4").is_file()
    code = main(["sweep", "--model", "tiny", "--image", str(still), "--prompt", "x", "--style", "look:0.5",
                 "--loras", str(library.root), "--out", str(tmp_path / "bad"), "--quiet"])
    assert code == 2 and "NAME only" in capsys.readouterr().err
