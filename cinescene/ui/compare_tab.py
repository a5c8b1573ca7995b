"""The Compare tab: base and tuned side by side from one seed, with the numbers; or blind, as A and B.

In blind review the pair is shown as A and B in random order, without labels, numbers or file names that
tell which is which; which side is A stays on the server (a ``gr.State``) until the viewer has chosen. The
choice is stored by ``review_ab`` beside the compare record, then the sides, the numbers and the tuned
adapters' win rates over every review in the outputs folder are shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from .. import compare, metrics, outputs, review_ab
from ..errors import CinesceneError
from .common import GPU_QUEUE, AppContext, named_handler, progress_callback, user_error
from .generate import ShotInputs, shot_examples, shot_handler, shot_inputs, shot_settings

TABLE_HEADERS = ["metric", "base", "tuned", "tuned - base", "better", "calibrated"]
# Restart both players together whenever a new pair arrives or the button is pressed.
PLAY_BOTH_JS = """() => {
  const vids = ['#cmp-base video', '#cmp-tuned video', '#cmp-a video', '#cmp-b video']
    .map(s => document.querySelector(s)).filter(v => v && v.currentSrc);
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


def numbers(scores: dict[str, Any], report: str) -> tuple[Any, ...]:
    """The table, the three plots, the calibration notice and the record file, for the tab's number outputs."""
    notice = ""
    if scores["uncalibrated"]:
        notice = ("**Uncalibrated:** " + ", ".join(scores["uncalibrated"]) + " come from networks with random "
                  "weights; they show the pipeline works, not how good the shot is.")
    lpips_plot = series_frames(scores, "lpips_temporal", {"lpips_pair": "base vs tuned", "base": "base temporal",
                                                          "tuned": "tuned temporal"})
    clip_plot = series_frames(scores, "clip_text", {"base": "base", "tuned": "tuned"})
    return compare.metrics_table(scores), lpips_plot, clip_plot, camera_frames(scores), notice, report


def compare_shot(ctx: AppContext, values: dict[str, Any], progress: gr.Progress) -> compare.CompareResult:
    image, settings, spec = shot_settings(ctx, values)
    progress(0, desc="loading models")
    networks = metrics.get_networks(ctx.metrics)
    model = ctx.model(spec)
    out_dir = outputs.new_request_dir(ctx.outputs_root, "compare")
    return compare.compare(model, image, settings, out_dir, ctx.library, networks,
                           on_event=progress_callback(progress, spans=SPANS))


def run_compare(ctx: AppContext, values: dict[str, Any], progress: gr.Progress) -> tuple[Any, ...]:
    try:
        result = compare_shot(ctx, values, progress)
    except CinesceneError as err:
        raise user_error(err) from None
    table, lpips_plot, clip_plot, camera_plot, notice, report = numbers(result.metrics, str(result.paths["metrics"]))
    return (str(result.paths["base"]), str(result.paths["tuned"]), table, lpips_plot, clip_plot, camera_plot, notice,
            report)


BLIND_INTRO = ("Two takes of one shot: one from the plain model, one with your adapters, in random order. "
               "Play them, choose, and the labels, the numbers and the win rate come back.")
REVIEW_FIELDS = ("pair", *review_ab.QUESTIONS, "note", "reviewer")  # the submit handler's parameters


def run_blind(ctx: AppContext, values: dict[str, Any], progress: gr.Progress) -> tuple[Any, ...]:
    """Compare, then show the pair as A and B; which side is A goes only into the session's state."""
    try:
        result = compare_shot(ctx, values, progress)
        a_side = review_ab.blind_order()
        shown = review_ab.blind_copies(result.paths["metrics"].parent, a_side,
                                       outputs.new_request_dir(ctx.outputs_root, "blind"))
    except CinesceneError as err:
        raise user_error(err) from None
    pair = {"compare": str(result.paths["metrics"].parent), "a_side": a_side}
    choices = [gr.update(value=None, interactive=True) for _ in review_ab.QUESTIONS]
    hidden = gr.update(visible=False)  # the last reveal and the numbers, until this pair is judged
    return (gr.update(value=str(shown["A"]), label="A"), gr.update(value=str(shown["B"]), label="B"), *choices,
            gr.update(value=""), gr.update(interactive=True), hidden, hidden, pair)


def reveal_text(judgement: review_ab.Judgement, folder: str) -> str:
    shown = judgement.shown or {}
    tuned = ", ".join(f"{a['slot']} `{a['name']}` {a['strength']:g}" for a in judgement.adapters)
    sides = {"tuned": f"the tuned take ({tuned})", "base": "the base model (no adapters)"}
    clicked = judgement.clicked or {}
    chosen = "; ".join(f"{asks}: **{judgement.preferred[q]}**" + ("" if clicked[q] == review_ab.TIE
                                                                   else f" ({clicked[q]})")
                       for q, asks in review_ab.QUESTIONS.items())
    return (f"**A was {sides[shown['A']]}; B was {sides[shown['B']]}.**\n\nYou chose {chosen}. Saved in "
            f"`{folder}/{review_ab.REVIEWS_FILE}` beside its metrics.json.")


def submit_review(ctx: AppContext, values: dict[str, Any]) -> tuple[Any, ...]:
    """Store the choice as the real side, then reveal: labels, numbers and the tuned adapters' win rates."""
    pair = values.get("pair")
    try:
        if not pair:
            raise CinesceneError("no blind pair is waiting for a choice: press Compare blind (each pair is judged "
                                 "once)")
        judgement = review_ab.record_blind(pair["compare"], pair["a_side"],
                                           {q: values.get(q) for q in review_ab.QUESTIONS},
                                           note=values.get("note") or "", reviewer=values.get("reviewer") or "")
        record = review_ab.compare_record(pair["compare"])
        found = review_ab.find_reviews(ctx.outputs_root)
    except CinesceneError as err:
        raise user_error(err) from None
    shown = judgement.shown or {}
    folder = Path(pair["compare"])
    reveal = reveal_text(judgement, folder.name)
    if found.unreadable:
        reveal += f"\n\n{len(found.unreadable)} unreadable review line(s) left out of the win rates."
    rates = review_ab.win_rate_rows(found.reviews, judgement.adapters)
    locked = [gr.update(interactive=False) for _ in review_ab.QUESTIONS]
    return (gr.update(label=f"A: {shown['A']}"), gr.update(label=f"B: {shown['B']}"), *locked,
            gr.update(interactive=False), reveal, rates, gr.update(visible=True), gr.update(visible=True),
            *numbers(record, str(folder / "metrics.json")), None)


def blind_mode(on: bool) -> tuple[Any, ...]:
    """Swap the labelled view for the blind one; entering it clears the labelled players."""
    cleared = None if on else gr.update()
    return (gr.update(visible=not on), gr.update(visible=on), gr.update(visible=not on), gr.update(visible=on),
            gr.update(visible=not on), cleared, cleared)


def compare_tab(ctx: AppContext) -> ShotInputs:
    gr.Markdown("The same still, prompt and seed through the base model (every adapter at 0) and the tuned one "
                "(the adapters you pick), then CLIP-SIM, LPIPS, temporal stability, camera motion and the look "
                "distance between them. **Blind review** shows the two as A and B instead, and keeps your choice.")
    with gr.Row():
        with gr.Column(scale=1):
            shot = shot_inputs(ctx, "cmp", generations=2)
            blind = gr.Checkbox(False, label="Blind review: unlabelled A and B in random order, then your choice",
                                elem_id="cmp-blind")
            run = gr.Button("Compare", variant="primary", elem_id="cmp-run")
            run_blind_button = gr.Button("Compare blind", variant="primary", elem_id="cmp-run-blind", visible=False)
            shot_examples(shot, "cmp", ctx.spec.model)
        with gr.Column(scale=2):
            with gr.Column() as players:
                with gr.Row():
                    base = gr.Video(label="Base", elem_id="cmp-base", autoplay=False)
                    tuned = gr.Video(label="Tuned", elem_id="cmp-tuned", autoplay=False)
                play = gr.Button("▶ Play both from the start", size="sm", elem_id="cmp-play")
            with gr.Column(visible=False, elem_id="cmp-blind-panel") as panel:
                gr.Markdown(BLIND_INTRO)
                with gr.Row():
                    video_a = gr.Video(label="A", elem_id="cmp-a", autoplay=False)
                    video_b = gr.Video(label="B", elem_id="cmp-b", autoplay=False)
                play_ab = gr.Button("▶ Play both from the start", size="sm", elem_id="cmp-play-ab")
                with gr.Row():
                    questions = [gr.Radio(list(review_ab.CLICKS), value=None, label=asks.capitalize(),
                                          elem_id=f"cmp-choice-{question}")
                                 for question, asks in review_ab.QUESTIONS.items()]
                with gr.Row():
                    note = gr.Textbox(label="Note (optional)", max_length=review_ab.MAX_NOTE_CHARS,
                                      elem_id="cmp-note")
                    reviewer = gr.Textbox(label="Your name (optional)", max_length=review_ab.MAX_REVIEWER_CHARS,
                                          elem_id="cmp-reviewer")
                submit = gr.Button("Submit choice", variant="primary", elem_id="cmp-submit", interactive=False)
                with gr.Column(visible=False) as revealed:
                    reveal = gr.Markdown(elem_id="cmp-reveal")
                    rates = gr.Dataframe(headers=review_ab.WIN_RATE_HEADERS, interactive=False,
                                         elem_id="cmp-win-rate", label="Win rate of the tuned side over every review "
                                         "of these adapters (a tie counts half; Wilson 95% interval)")
            with gr.Column() as figures:
                notice = gr.Markdown(elem_id="cmp-notice")
                table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, elem_id="cmp-table")
                with gr.Row():
                    lpips_plot = gr.LinePlot(x="frame", y="value", color="series",
                                             title="LPIPS per frame (lower: closer)", elem_id="cmp-lpips-plot")
                    clip_plot = gr.LinePlot(x="frame", y="value", color="series",
                                            title="CLIP-SIM to the prompt per frame", elem_id="cmp-clip-plot")
                camera_plot = gr.LinePlot(x="frame", y="value", color="series",
                                          title="Camera motion per frame (px/frame; dx > 0 pans right, dy > 0 tilts "
                                                "down)", elem_id="cmp-camera-plot")
                report = gr.File(label="metrics.json", elem_id="cmp-report")
    pair = gr.State(None)  # {"compare": folder, "a_side": side}: on the server only, never sent to the page

    numbers_out = [table, lpips_plot, clip_plot, camera_plot, notice, report]
    run.click(shot_handler(ctx, run_compare, generations=2), inputs=shot.components,
              outputs=[base, tuned, *numbers_out], api_name="compare", concurrency_id=GPU_QUEUE,
              concurrency_limit=1).success(None, js=PLAY_BOTH_JS, api_name="compare_play")
    blind.change(blind_mode, inputs=blind, outputs=[run, run_blind_button, players, panel, figures, base, tuned],
                 api_name="compare_blind_mode", queue=False)
    run_blind_button.click(shot_handler(ctx, run_blind, generations=2), inputs=shot.components,
                           outputs=[video_a, video_b, *questions, note, submit, revealed, figures, pair],
                           api_name="compare_blind", concurrency_id=GPU_QUEUE, concurrency_limit=1).success(
        None, js=PLAY_BOTH_JS, api_name="compare_blind_play")
    submit.click(named_handler(REVIEW_FIELDS, lambda values, progress: submit_review(ctx, values)),
                 inputs=[pair, *questions, note, reviewer],
                 outputs=[video_a, video_b, *questions, submit, reveal, rates, revealed, figures, *numbers_out,
                          pair],
                 api_name="blind_choice")
    play.click(None, js=PLAY_BOTH_JS, api_name="play_both")
    play_ab.click(None, js=PLAY_BOTH_JS, api_name="play_ab")
    return shot
