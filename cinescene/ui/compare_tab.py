"""The Compare tab: base and tuned side by side from one seed, with the numbers."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from .. import compare, metrics, outputs
from ..errors import CinesceneError
from .common import GPU_QUEUE, AppContext, progress_callback, user_error
from .generate import ShotInputs, shot_examples, shot_handler, shot_inputs, shot_settings

TABLE_HEADERS = ["metric", "base", "tuned", "tuned - base", "better", "calibrated"]
# Restart both players together whenever a new pair arrives or the button is pressed.
PLAY_BOTH_JS = """() => {
  const vids = ['#cmp-base video', '#cmp-tuned video'].map(s => document.querySelector(s)).filter(Boolean);
  vids.forEach(v => { v.pause(); v.currentTime = 0; v.loop = true; v.muted = true; });
  Promise.all(vids.map(v => v.readyState >= 2 ? Promise.resolve() :
      new Promise(r => v.addEventListener('canplay', r, {once: true}))))
    .then(() => vids.forEach(v => v.play()));
}"""
# Shares of the progress bar each of compare.TASKS fills.
SPANS = {"base": (0.0, 0.45, "base (no adapters)"), "tuned": (0.45, 0.9, "tuned"), "scoring": (0.9, 1.0, "scoring")}


def series_frames(result: dict[str, Any], metric: str, labels: dict[str, str]) -> pd.DataFrame:
    """Long-form (frame, value, series) rows for a line plot; pair metrics included when named in ``labels``."""
    rows = []
    for key, label in labels.items():
        source = result["pair"].get(key) if key in result.get("pair", {}) else result["videos"].get(key, {}).get(metric)
        if not source:
            continue
        # Metrics on consecutive pairs (t-1, t) are drawn at frame t.
        offset = 1 if key not in result.get("pair", {}) and metric in metrics.CONSECUTIVE else 0
        rows += [{"frame": i + offset, "value": v, "series": label} for i, v in enumerate(source["series"])]
    return pd.DataFrame(rows, columns=["frame", "value", "series"])


def camera_frames(result: dict[str, Any]) -> pd.DataFrame:
    """Long-form (frame, value, series) rows of both videos' camera dx and dy, the pair (t-1, t) at frame t."""
    columns = compare.per_frame(result)
    rows = [{"frame": frame, "value": value, "series": f"{label} {axis}"}
            for label in ("base", "tuned") for axis in ("dx", "dy")
            for frame, value in zip(columns["frame"], columns.get(f"{label}_camera_{axis}", []))
            if value is not None]
    return pd.DataFrame(rows, columns=["frame", "value", "series"])


def run_compare(ctx: AppContext, values: dict[str, Any], progress: gr.Progress) -> tuple[Any, ...]:
    try:
        image, settings, spec = shot_settings(ctx, values)
        progress(0, desc="loading models")
        networks = metrics.get_networks(ctx.metrics)
        model = ctx.model(spec)
        out_dir = outputs.new_request_dir(ctx.outputs_root, "compare")
        result = compare.compare(model, image, settings, out_dir, ctx.library, networks,
                                 on_event=progress_callback(progress, spans=SPANS))
    except CinesceneError as err:
        raise user_error(err) from None
    scores = result.metrics
    notice = ""
    if scores["uncalibrated"]:
        notice = ("**Uncalibrated:** " + ", ".join(scores["uncalibrated"]) + " come from networks with random "
                  "weights; they show the pipeline works, not how good the shot is.")
    lpips_plot = series_frames(scores, "lpips_temporal", {"lpips_pair": "base vs tuned", "base": "base temporal",
                                                          "tuned": "tuned temporal"})
    clip_plot = series_frames(scores, "clip_text", {"base": "base", "tuned": "tuned"})
    return (str(result.paths["base"]), str(result.paths["tuned"]), compare.metrics_table(scores), lpips_plot,
            clip_plot, camera_frames(scores), notice, str(result.paths["metrics"]))


def compare_tab(ctx: AppContext) -> ShotInputs:
    gr.Markdown("The same still, prompt and seed through the base model (every adapter at 0) and the tuned one "
                "(the adapters you pick), then CLIP-SIM, LPIPS, temporal stability, camera motion and the look "
                "distance between them.")
    with gr.Row():
        with gr.Column(scale=1):
            shot = shot_inputs(ctx, "cmp", generations=2)
            run = gr.Button("Compare", variant="primary", elem_id="cmp-run")
            shot_examples(shot, "cmp", ctx.spec.model)
        with gr.Column(scale=2):
            with gr.Row():
                base = gr.Video(label="Base", elem_id="cmp-base", autoplay=False)
                tuned = gr.Video(label="Tuned", elem_id="cmp-tuned", autoplay=False)
            play = gr.Button("▶ Play both from the start", size="sm", elem_id="cmp-play")
            notice = gr.Markdown(elem_id="cmp-notice")
            table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, elem_id="cmp-table")
            with gr.Row():
                lpips_plot = gr.LinePlot(x="frame", y="value", color="series", title="LPIPS per frame (lower: closer)",
                                         elem_id="cmp-lpips-plot")
                clip_plot = gr.LinePlot(x="frame", y="value", color="series", title="CLIP-SIM to the prompt per frame",
                                        elem_id="cmp-clip-plot")
            camera_plot = gr.LinePlot(x="frame", y="value", color="series",
                                      title="Camera motion per frame (px/frame; dx > 0 pans right, dy > 0 tilts down)",
                                      elem_id="cmp-camera-plot")
            report = gr.File(label="metrics.json", elem_id="cmp-report")

    outputs = [base, tuned, table, lpips_plot, clip_plot, camera_plot, notice, report]
    run.click(shot_handler(ctx, run_compare, generations=2), inputs=shot.components, outputs=outputs,
              api_name="compare", concurrency_id=GPU_QUEUE, concurrency_limit=1).success(
        None, js=PLAY_BOTH_JS, api_name="compare_play")
    play.click(None, js=PLAY_BOTH_JS, api_name="play_both")
    return shot
