"""Strength sweep: one still, prompt and seed under a grid of style x motion strengths, to pick where to run them.

Every cell is an ordinary sample (same pipeline, same seed, the adapters hot-swapped once and their
strengths changed per cell), so a cell can be reproduced with ``sample --style NAME:S --motion NAME:M``.
Writes into ``DIR``:

* ``grid.png``: the middle frame of every cell, rows by style strength, columns by motion strength;
* ``grid.mp4``: every cell playing at once, in the same layout;
* ``cells/style_S_motion_M.mp4``: each cell's video;
* ``cells.csv`` and ``sweep.json``: per cell the strengths, the look distance to the 0/0 cell (and to a
  reference clip, when given) and the camera motion (dx, dy, zoom), for a plot or a spreadsheet.

Ramps reuse the sampler's per-step strengths: ``up`` runs each adapter from 0 to its cell's strength over
the denoising steps, ``down`` from its strength to 0.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import atomic, media, metrics, outputs, progress, sampler
from .adapters import AdapterLibrary
from .errors import InputError
from .loading import LoadedModel
from .record import build_record
from .settings import AdapterChoice, SampleSettings

RAMPS = ("constant", "up", "down")
MAX_CELLS = 36  # 6 x 6: beyond that a grid stops being readable and the sweep stops being a quick look


@dataclass(frozen=True)
class SweepGrid:
    """The strengths to try (each list in the order it is shown) and how each is applied over the steps."""

    style_strengths: tuple[float, ...] = field(default=(0.0, 0.5, 1.0), metadata={"help": "style strengths (rows)"})
    motion_strengths: tuple[float, ...] = field(default=(0.0, 0.5, 1.0),
                                                metadata={"help": "motion strengths (columns)"})
    ramp: str = field(default="constant", metadata={"help": "constant, up (0 to the strength over the steps) or "
                                                            "down (the strength to 0)", "choices": RAMPS})

    def cells(self) -> list[tuple[float, float]]:
        return [(s, m) for s in self.style_strengths for m in self.motion_strengths]


@dataclass
class SweepResult:
    cells: list[dict[str, Any]]
    paths: dict[str, Path]
    record: dict[str, Any]


def check_grid(grid: SweepGrid, style: str | None, motion: str | None) -> None:
    if style is None and motion is None:
        raise InputError("nothing to sweep: choose a style or a motion adapter")
    if grid.ramp not in RAMPS:
        raise InputError(f"ramp must be one of {', '.join(RAMPS)}, got {grid.ramp!r}")
    for name, values, adapter in (("style", grid.style_strengths, style), ("motion", grid.motion_strengths, motion)):
        if not values:
            raise InputError(f"the {name} strengths are empty: give at least one value (0 to leave it off)")
        if len(set(values)) != len(values):
            raise InputError(f"the {name} strengths repeat a value: {', '.join(map(str, values))}")
        if adapter is None and any(v != 0 for v in values):
            raise InputError(f"{name} strengths other than 0 need a {name} adapter")
    if len(grid.cells()) > MAX_CELLS:
        raise InputError(f"{len(grid.cells())} cells is more than {MAX_CELLS}: sweep fewer strengths at a time")


def choices_for(style: str | None, motion: str | None, strengths: tuple[float, float],
                ramp: str) -> tuple[AdapterChoice, ...]:
    """The adapters of one cell, as the sampler takes them (a slot at strength 0 is left out)."""
    out = []
    for slot, name, strength in (("style", style, strengths[0]), ("motion", motion, strengths[1])):
        if name is None or strength == 0:
            continue
        if ramp == "constant":
            out.append(AdapterChoice(slot, name, strength))
        else:
            start, end = (0.0, strength) if ramp == "up" else (strength, 0.0)
            out.append(AdapterChoice(slot, name, start, end))
    return tuple(out)


def cell_name(strengths: tuple[float, float]) -> str:
    return f"style_{strengths[0]:g}_motion_{strengths[1]:g}"


def run(model: LoadedModel, image: Image.Image, settings: SampleSettings, style: str | None, motion: str | None,
        grid: SweepGrid, out_dir: str | os.PathLike[str], library: AdapterLibrary,
        on_event: progress.OnEvent | None = None, reference: np.ndarray | None = None) -> SweepResult:
    """Sample every cell of ``grid`` from one seed, measure each, write ``DIR`` (see the module docstring).

    ``settings.adapters`` is ignored: the grid decides them. Progress: one ``cell`` task event per
    cell, then ``writing``.
    """
    check_grid(grid, style, motion)
    out_dir = outputs.check_out_folder(out_dir)
    probe = dataclasses.replace(settings, adapters=choices_for(style, motion, (1.0, 1.0), "constant"))
    sampler.validate_settings(probe, library)
    cells_dir = out_dir / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    videos: dict[tuple[float, float], np.ndarray] = {}
    total = len(grid.cells())
    progress.report(on_event, "cell", 0, total)
    for done, strengths in enumerate(grid.cells(), 1):
        cell_settings = dataclasses.replace(settings, adapters=choices_for(style, motion, strengths, grid.ramp))
        result = sampler.sample(model, image, cell_settings, library=library)
        videos[strengths] = result.frames
        media.write_video(result.frames, cells_dir / f"{cell_name(strengths)}.mp4", fps=result.settings.fps)
        results.append({"style": strengths[0], "motion": strengths[1], "video": f"cells/{cell_name(strengths)}.mp4",
                        "adapters": [dataclasses.asdict(c) for c in cell_settings.adapters]})
        progress.report(on_event, "cell", done, total)
    fps = result.settings.fps
    origin = videos.get((0.0, 0.0))
    for cell in results:
        frames = videos[(cell["style"], cell["motion"])]
        motion_values = metrics.camera_motion(frames).values
        cell.update({key: round(float(motion_values[key]), 4) for key in ("dx", "dy", "zoom")})
        cell["camera"] = motion_values["label"]
        if origin is not None:
            cell["look_to_base"] = round(metrics.look_to(frames, origin).values["distance"], 3)
        if reference is not None:
            cell["look_to_reference"] = round(
                metrics.look_to(frames, metrics.fit_reference(reference, frames)).values["distance"], 3)
    progress.report(on_event, "writing", 0, 1)
    layout = [[videos[(s, m)] for m in grid.motion_strengths] for s in grid.style_strengths]
    labels = [[f"style {s:g} / motion {m:g}" for m in grid.motion_strengths] for s in grid.style_strengths]
    tiled = media.tile(layout, labels)
    paths = {"grid_image": out_dir / "grid.png", "grid_video": out_dir / "grid.mp4",
             "cells_csv": out_dir / "cells.csv", "record": out_dir / "sweep.json", "cells": cells_dir}
    with atomic.atomic_path(paths["grid_image"]) as tmp:
        Image.fromarray(tiled[len(tiled) // 2]).save(tmp, format="PNG")
    media.write_video(tiled, paths["grid_video"], fps=fps)
    atomic.write_text(paths["cells_csv"], cells_csv(results))
    record = build_record(kind="sweep", model=model.describe(), settings=result.settings.to_dict(),
                          sweep={"style_adapter": style, "motion_adapter": motion, **dataclasses.asdict(grid)},
                          cells=results, files={k: p.name for k, p in paths.items()})
    atomic.write_json(paths["record"], record)
    progress.report(on_event, "writing", 1, 1)
    return SweepResult(cells=results, paths=paths, record=record)


CSV_COLUMNS = ("style", "motion", "look_to_base", "look_to_reference", "dx", "dy", "zoom", "camera", "video")


def cells_csv(cells: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = [c for c in CSV_COLUMNS if any(c in cell for cell in cells)]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(cells)
    return buffer.getvalue()
