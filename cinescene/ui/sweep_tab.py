"""The Sweep tab: one shot under a grid of style x motion strengths, to pick where to run the adapters."""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr
import pandas as pd

from .. import outputs, sweep
from ..errors import CinesceneError
from .common import GPU_QUEUE, AppContext, progress_callback, user_error
from .generate import ShotInputs, shot_examples, shot_handler, shot_inputs, shot_settings

SWEEP_FIELDS = ("style_strengths", "motion_strengths", "ramp")  # handler parameters after the shot's
CELL_HEADERS = ["style", "motion", "look to 0/0", "camera dx", "camera dy", "camera zoom", "camera"]


def strengths(text: str | None, what: str) -> tuple[float, ...]:
    """"0, 0.5, 1" -> (0.0, 0.5, 1.0), or a one-line error naming the field."""
    try:
        values = tuple(float(v) for v in (text or "").replace(",", " ").split())
    except ValueError:
        raise CinesceneError(f"{what} strengths: {text!r} is not a list of numbers (for example 0, 0.5, 1)") from None
    return values


def grid_of(values: dict[str, Any]) -> sweep.SweepGrid:
    return sweep.SweepGrid(style_strengths=strengths(values.get("style_strengths"), "style"),
                           motion_strengths=strengths(values.get("motion_strengths"), "motion"),
                           ramp=values.get("ramp") or "constant")


def cell_count(values: dict[str, Any]) -> int:
    """Videos a request makes (what a ZeroGPU Space reserves time for); unparsable input counts as one."""
    try:
        return max(1, len(grid_of(values).cells()))
    except CinesceneError:
        return 1


def strength_plot(cells: list[dict[str, Any]], value: str, across: str, series: str) -> pd.DataFrame:
    """Long-form rows for a line plot of ``value`` against the ``across`` strength, one line per ``series`` one."""
    rows = [{"strength": c[across], "value": c[value], "series": f"{series} {c[series]:g}"}
            for c in cells if c.get(value) is not None]
    return pd.DataFrame(rows, columns=["strength", "value", "series"])


def run_sweep(ctx: AppContext, values: dict[str, Any], progress: gr.Progress) -> tuple[Any, ...]:
    try:
        grid = grid_of(values)
        # The strength sliders of the shot do not apply: the grid decides each cell's strengths.
        image, settings, spec = shot_settings(ctx, {**values, "style_strength": 1.0, "motion_strength": 1.0,
                                                    "style_end": None, "motion_end": None})
        names = {c.slot: c.name for c in settings.adapters}
        sweep.check_grid(grid, names.get("style"), names.get("motion"))
        progress(0, desc="loading model")
        model = ctx.model(spec)
        out_dir = outputs.new_request_dir(ctx.outputs_root, "sweep")
        result = sweep.run(model, image, dataclasses.replace(settings, adapters=()), names.get("style"),
                           names.get("motion"), grid, out_dir, ctx.library, on_event=progress_callback(progress))
    except CinesceneError as err:
        raise user_error(err) from None
    table = [[c["style"], c["motion"], c.get("look_to_base"), c["dx"], c["dy"], c["zoom"], c["camera"]]
             for c in result.cells]
    return (str(result.paths["grid_video"]), table,
            strength_plot(result.cells, "look_to_base", "style", "motion"),
            strength_plot(result.cells, "dx", "motion", "style"), str(result.paths["record"]))


def sweep_tab(ctx: AppContext) -> ShotInputs:
    gr.Markdown("One still, prompt and seed under a grid of strengths: rows are the style adapter's, columns the "
                "motion adapter's. The 0 / 0 cell is the base model; every cell is what Generate gives at those "
                "strengths. Pick the cell that looks right, with the look and camera numbers beside it.")
    with gr.Row():
        with gr.Column(scale=1):
            shot = shot_inputs(ctx, "swp", generations=4)  # the default 2 x 2 grid
            with gr.Row():
                style_strengths = gr.Textbox("0, 1", label="Style strengths (rows)", elem_id="swp-style-s")
                motion_strengths = gr.Textbox("0, 1", label="Motion strengths (columns)",
                                              elem_id="swp-motion-s")
            ramp = gr.Radio(list(sweep.RAMPS), value="constant", label="Over the denoising steps",
                            info="constant, up (0 to the strength) or down (the strength to 0)", elem_id="swp-ramp")
            run = gr.Button("Sweep", variant="primary", elem_id="swp-run")
            shot_examples(shot, "swp", ctx.spec.model)
        with gr.Column(scale=2):
            grid = gr.Video(label="Grid (every cell playing)", elem_id="swp-grid", autoplay=True, loop=True)
            table = gr.Dataframe(headers=CELL_HEADERS, interactive=False, elem_id="swp-table")
            with gr.Row():
                look_plot = gr.LinePlot(x="strength", y="value", color="series",
                                        title="Look distance to the 0/0 cell against style strength",
                                        elem_id="swp-look-plot")
                camera_plot = gr.LinePlot(x="strength", y="value", color="series",
                                          title="Camera dx (px/frame) against motion strength",
                                          elem_id="swp-camera-plot")
            report = gr.File(label="sweep.json", elem_id="swp-report")
    run.click(shot_handler(ctx, run_sweep, generations=cell_count, extra_fields=SWEEP_FIELDS),
              inputs=shot.components + [style_strengths, motion_strengths, ramp],
              outputs=[grid, table, look_plot, camera_plot, report], api_name="sweep", concurrency_id=GPU_QUEUE,
              concurrency_limit=1)
    return shot
