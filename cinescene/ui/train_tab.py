"""The Train tab: pick or upload a dataset, set the main knobs, start, watch the loss, stop."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from .. import archive, data, train_config
from ..errors import CinesceneError, InputError
from ..names import check_plain_name
from .common import AppContext, user_error

VALIDATION_HEADERS = ["step", "LPIPS", "CLIP-SIM", "best", "calibrated"]


def dataset_choices(ctx: AppContext) -> list[str]:
    root = ctx.datasets_root
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def upload_dataset(ctx: AppContext, file: str | None) -> tuple[str, Any]:
    try:
        if not file:
            raise CinesceneError("choose a .zip of captioned clips and stills")
        folder = archive.extract_zip(file, ctx.datasets_root, name=Path(file).name,
                                     max_total=ctx.limits.max_dataset_bytes)
    except CinesceneError as err:
        raise user_error(err) from None
    return f"Extracted **{folder.name}**.", gr.update(choices=dataset_choices(ctx), value=folder.name)


def start_training(ctx: AppContext, dataset: str | None, stage: str, name: str, style_adapter: str | None,
                   rank: float, alpha: float, learning_rate: float, steps: float, grad_accum: float,
                   val_every: float, patience: float, window: float) -> str:
    try:
        if steps is None or int(steps) > ctx.limits.max_train_steps:
            raise InputError(f"this app allows at most {ctx.limits.max_train_steps} steps per stage"
                             + (f": {ctx.limits.train_note}" if ctx.limits.train_note else ""))
        if not dataset:
            raise CinesceneError("choose a dataset (or upload a .zip)")
        check_plain_name(dataset, "dataset")  # a folder directly inside the datasets root, nothing else
        folder = ctx.datasets_root / dataset
        config = train_config.build(
            model=ctx.spec.model, data=str(folder), stage=stage, name=(name or "").strip(),
            style_adapter=style_adapter if style_adapter and style_adapter != "none" else None,
            rank=int(rank), alpha=float(alpha), learning_rate=float(learning_rate), steps=int(steps),
            grad_accum=int(grad_accum), val_every=int(val_every), patience=int(patience), window=int(window),
            runs_dir=str(ctx.runs_root), loras_dir=str(ctx.library.root), metric_weights=ctx.metrics.weights,
        )
        if not folder.is_dir():
            raise CinesceneError(f"no dataset named {dataset!r}")
        # Check the whole dataset now: a bad file is named here, not minutes later in a log.
        data.scan(config.data, stage=config.stage, window=config.window, fps=config.fps,
                  val_fraction=config.val_fraction)
        if config.stage == "motion" and config.style_adapter:
            ctx.library.get(config.style_adapter, kind="style")
        ctx.release_gpu()
        run_dir = ctx.runs.start(config)
    except CinesceneError as err:
        raise user_error(err) from None
    return f"Started **{config.name}** ({config.stage}); logs in `{run_dir}`."


def stop_training(ctx: AppContext) -> str:
    if ctx.runs.stop():
        return "Stopping: the trainer writes a checkpoint, then exits (`--resume` continues from it)."
    return "No training run is going."


def poll(ctx: AppContext) -> tuple[Any, ...]:
    status = ctx.runs.status()
    if status is None:
        return "No run yet.", pd.DataFrame(columns=["step", "loss"]), [], None, "", False
    p = status.progress
    eta = f", about {_dt.timedelta(seconds=int(p['eta_seconds']))} left" if p.get("eta_seconds") else ""
    lines = [f"**{status.name}**: {p['state']}" + (f" ({p['stage']} stage)" if p.get("stage") else ""),
             f"step {p['step']} of {p['total']}{eta}"
             + (f", loss {p['loss']:.4f}" if p.get("loss") is not None else "")]
    if p.get("best"):
        lines.append(f"best validation so far: step {p['best']['step']}, LPIPS {p['best']['lpips']:.4f}")
    if p.get("checkpoint"):
        lines.append(f"last checkpoint: `{p['checkpoint']}`")
    if p.get("adapter") and p["state"] == "done":
        lines.append(f"finished: **{p['adapter']}** is in the library (Generate and Compare list it)")
    if p.get("error"):
        lines.append(f"error: {p['error']}")
    losses = pd.DataFrame([{"step": e["step"], "loss": e["loss"], "stage": e.get("stage", "")}
                           for e in status.events if e.get("type") == "step"], columns=["step", "loss", "stage"])
    validations = [[e["step"], round(e["lpips"], 4), round(e["clip_text"], 4), "yes" if e.get("best") else "",
                    "yes" if e.get("calibrated") else "no"] for e in status.events if e.get("type") == "validation"]
    video = p.get("validation_video") if p.get("validation_video") and Path(p["validation_video"]).is_file() else None
    finished = p["state"] in ("done", "stopped", "stopped early", "failed") and not status.running
    return "  \n".join(lines), losses, validations, video, p.get("checkpoint") or "", finished


def train_tab(ctx: AppContext, refresh_adapters: Any, refreshed: list[Any]) -> None:
    defaults = train_config.TrainConfig()
    if ctx.limits.train_note:
        gr.Markdown(ctx.limits.train_note, elem_id="train-note")
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row():
                # Custom values pass to start_training, which checks the name against the folder itself.
                dataset = gr.Dropdown(dataset_choices(ctx), label="Dataset (a folder in datasets/)",
                                      elem_id="train-dataset", allow_custom_value=True)
                upload = gr.File(label="…or upload a .zip", file_types=[".zip"], type="filepath",
                                 elem_id="train-zip")
            upload_status = gr.Markdown()
            stage = gr.Radio(["style", "motion", "both"], value="style", label="Stage", elem_id="train-stage")
            name = gr.Textbox(label="Adapter name", max_length=58, elem_id="train-name")
            style_adapter = gr.Dropdown(["none"] + ctx.library.names("style"), value="none", allow_custom_value=True,
                                        label="Frozen style adapter (motion stage only)")
            with gr.Row():
                rank = gr.Number(defaults.rank, precision=0, label="Rank")
                alpha = gr.Number(defaults.alpha, label="Alpha")
                learning_rate = gr.Number(defaults.learning_rate, label="Learning rate")
            with gr.Row():
                steps = gr.Number(min(defaults.steps, ctx.limits.max_train_steps), precision=0,
                                  label="Steps per stage", elem_id="train-steps")
                grad_accum = gr.Number(defaults.grad_accum, precision=0, label="Gradient accumulation")
                window = gr.Number(defaults.window, precision=0, label="Motion window (4k+1 frames)",
                                   elem_id="train-window")
            with gr.Row():
                val_every = gr.Number(defaults.val_every, precision=0, label="Validate every", elem_id="train-val")
                patience = gr.Number(defaults.patience, precision=0, label="Early-stopping patience")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="train-start")
                stop = gr.Button("Stop (checkpoints)", variant="stop", elem_id="train-stop")
        with gr.Column(scale=1):
            status = gr.Markdown("No run yet.", elem_id="train-status")
            loss_plot = gr.LinePlot(x="step", y="loss", color="stage", title="Training loss", elem_id="train-loss")
            validation = gr.Dataframe(headers=VALIDATION_HEADERS, interactive=False, elem_id="train-validation")
            video = gr.Video(label="Latest validation sample", elem_id="train-video", autoplay=True, loop=True)
            checkpoint = gr.Textbox(label="Last checkpoint", interactive=False, elem_id="train-checkpoint")
    finished = gr.State(False)
    timer = gr.Timer(2.0)

    def _upload(file):
        return upload_dataset(ctx, file)

    upload.upload(_upload, inputs=upload, outputs=[upload_status, dataset], api_name="upload_dataset")

    def _start(dataset, stage, name, style_adapter, rank, alpha, learning_rate, steps, grad_accum, val_every,
               patience, window):
        return start_training(ctx, dataset, stage, name, style_adapter, rank, alpha, learning_rate, steps,
                              grad_accum, val_every, patience, window), False

    start.click(_start, inputs=[dataset, stage, name, style_adapter, rank, alpha, learning_rate, steps, grad_accum,
                                val_every, patience, window], outputs=[status, finished], api_name="train_start")
    stop.click(lambda: stop_training(ctx), outputs=status, api_name="train_stop")

    def _poll(was_finished):
        text, losses, validations, clip, ckpt, done = poll(ctx)
        # When a run ends, list its adapter in the Generate and Compare dropdowns (once).
        updates = refresh_adapters() if done and not was_finished else tuple(gr.update() for _ in refreshed)
        return (text, losses, validations, clip, ckpt, done, *updates)

    timer.tick(_poll, inputs=finished, outputs=[status, loss_plot, validation, video, checkpoint, finished,
                                                *refreshed], api_name="train_status", queue=False)
