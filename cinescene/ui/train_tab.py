"""The Train tab: pick or upload a dataset, set the main knobs, start, watch the loss, stop."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..errors import CinesceneError, InputError
from ..names import check_plain_name
from ..toy import footage
from ..training import archive
from ..training import config as train_config
from ..training.dataset import scan
from ..training.log import mean_sd
from .common import AppContext, named_handler, user_error

VALIDATION_HEADERS = ["step", "LPIPS (mean ± sd)", "CLIP-SIM (mean ± sd)", "look distance (mean ± sd)",
                      "camera dx, dy (px/frame), zoom", "samples", "best", "calibrated"]
SCORE_NAMES = {"lpips": "mean LPIPS", "look": "mean look distance"}
DEMO_NAME = "toy-demo"  # the demo dataset's folder; toy-demo-2, -3 ... when it is taken
# The TrainConfig fields the tab offers (its API's parameters after ``dataset``), with their labels; every
# other setting keeps its TrainConfig default. Types, defaults and checks come from TrainConfig itself.
FORM = {"stage": "Stage", "name": "Adapter name", "style_adapter": "Frozen style adapter (motion stage only)",
        "rank": "Rank", "alpha": "Alpha", "learning_rate": "Learning rate", "steps": "Steps per stage",
        "grad_accum": "Gradient accumulation", "val_every": "Validate every", "patience": "Early-stopping patience",
        "window": "Motion window (4k+1 frames)", "val_score": "Early stopping follows"}
ELEM_IDS = {"val_every": "train-val"}  # the rest are train-<field>
LAYOUT = (("stage",), ("name",), ("style_adapter",), ("rank", "alpha", "learning_rate"),
          ("steps", "grad_accum", "window"), ("val_every", "patience"), ("val_score",))


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


def make_demo_dataset(ctx: AppContext) -> tuple[str, Any]:
    """Write the toy demo dataset (``footage.DEMO``) into a new folder of the datasets root and select it."""
    try:
        root = ctx.datasets_root
        root.mkdir(parents=True, exist_ok=True)
        name, number = DEMO_NAME, 1
        while (root / name).exists():
            number += 1
            name = f"{DEMO_NAME}-{number}"
        entries = footage.make_dataset(root / name, footage.DEMO)
    except OSError as err:  # a read-only or full disk: say so in one line, not as a traceback
        raise user_error(CinesceneError(f"cannot write the demo dataset into {ctx.datasets_root}: {err}")) from None
    except CinesceneError as err:
        raise user_error(err) from None
    clips = sum(1 for e in entries if e["kind"] == "clip")
    look, move = footage.DEMO.looks[0], footage.DEMO.moves[0]
    return (f"Made **{name}**: {clips} clips and {len(entries) - clips} stills of toy footage with the "
            f"{look} look and a {move} camera move.", gr.update(choices=dataset_choices(ctx), value=name))


def form_values(values: dict[str, Any]) -> dict[str, Any]:
    """Widget values to TrainConfig values: numbers to the field's type, "none" and blanks to unset."""
    kinds = {f.name: f.type for f in dataclasses.fields(train_config.TrainConfig)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or (isinstance(value, str) and value.strip() in ("", "none")):
            continue
        kind = kinds[name]
        out[name] = (int(value) if kind.startswith("int") else float(value) if kind.startswith("float")
                     else value.strip() if isinstance(value, str) else value)
    return out


def start_training(ctx: AppContext, dataset_name: str | None, values: dict[str, Any], resume: bool = False) -> str:
    """Start a run from the tab's ``FORM`` values (by field name) on a dataset in the datasets folder.

    ``resume``: continue the run of that name from its last checkpoint (the trainer's ``--resume``).
    """
    try:
        settings = {**form_values(values), **({"resume": True} if resume else {})}
        steps = settings.get("steps")
        if steps is None or steps > ctx.limits.max_train_steps:
            raise InputError(f"this app allows at most {ctx.limits.max_train_steps} steps per stage"
                             + (f": {ctx.limits.train_note}" if ctx.limits.train_note else ""))
        if not dataset_name:
            raise CinesceneError("choose a dataset (or upload a .zip)")
        check_plain_name(dataset_name, "dataset")  # a folder directly inside the datasets root, nothing else
        folder = ctx.datasets_root / dataset_name
        config = train_config.build(
            {"name": ""}, **settings, model=ctx.spec.model, data=str(folder), runs_dir=str(ctx.runs_root),
            loras_dir=str(ctx.library.root), metric_weights=ctx.metrics.weights,
        )
        if not folder.is_dir():
            raise CinesceneError(f"no dataset named {dataset_name!r}")
        if resume and not config.run_dir().is_dir():
            raise CinesceneError(f"no run named {config.name!r} to resume: start it first")
        # Check the whole dataset now: a bad file is named here, not minutes later in a log.
        scan(config.data, stage=config.stage, window=config.window, fps=config.fps, val_fraction=config.val_fraction,
             min_held_out=config.val_items)
        if config.stage == "motion" and config.style_adapter:
            ctx.library.get(config.style_adapter, kind="style")
        ctx.release_gpu()
        run_dir = ctx.runs.start(config)
    except CinesceneError as err:
        raise user_error(err) from None
    verb = "Resumed" if resume else "Started"
    return f"{verb} **{config.name}** ({config.stage}); logs in `{run_dir}`."


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
        score = p["best"].get("val_score") or "lpips"
        lines.append(f"best validation so far: step {p['best']['step']}, {SCORE_NAMES.get(score, score)} "
                     f"{mean_sd(p['best'], score)}")
    if p.get("checkpoint"):
        lines.append(f"last checkpoint: `{p['checkpoint']}`")
    if p.get("adapter") and p["state"] == "done":
        lines.append(f"finished: **{p['adapter']}** is in the library (Generate and Compare list it)")
    if p.get("error"):
        lines.append(f"error: {p['error']}")
    losses = pd.DataFrame([{"step": e["step"], "loss": e["loss"], "stage": e.get("stage", "")}
                           for e in status.events if e.get("type") == "step"], columns=["step", "loss", "stage"])
    validations = [[e["step"], mean_sd(e, "lpips"), mean_sd(e, "clip_text"),
                    mean_sd(e, "look") if e.get("look") is not None else "n/a", _camera(e),
                    f"{e.get('items', 1)} x {e.get('seeds', 1)} seeds", "yes" if e.get("best") else "",
                    "yes" if e.get("calibrated") else "no"] for e in status.events if e.get("type") == "validation"]
    video = p.get("validation_video") if p.get("validation_video") and Path(p["validation_video"]).is_file() else None
    finished = p["state"] in ("done", "stopped", "stopped early", "failed") and not status.running
    return "  \n".join(lines), losses, validations, video, p.get("checkpoint") or "", finished


def _camera(event: dict[str, Any]) -> str:
    if event.get("camera_dx") is None:
        return "n/a"  # a log from before camera motion was measured
    return f"{event['camera_dx']:+.2f}, {event['camera_dy']:+.2f}, {event['camera_zoom']:.4f}"


def form_widget(ctx: AppContext, name: str) -> Any:
    """The widget for one FORM field, from its TrainConfig definition (type, default, choices, help)."""
    spec = next(f for f in dataclasses.fields(train_config.TrainConfig) if f.name == name)
    common = {"label": FORM[name], "elem_id": ELEM_IDS.get(name, f"train-{name.replace('_', '-')}"),
              "info": spec.metadata.get("help")}
    if spec.metadata.get("choices"):
        return gr.Radio(list(spec.metadata["choices"]), value=spec.default, **common)
    if name == "style_adapter":
        # Custom values pass to start_training, which checks the name against the library.
        return gr.Dropdown(["none"] + ctx.library.names("style"), value="none", allow_custom_value=True, **common)
    if spec.type.startswith("str"):
        return gr.Textbox(max_length=58, **common)  # 64 minus the -style / -motion suffix of a "both" run
    value = min(spec.default, ctx.limits.max_train_steps) if name == "steps" else spec.default
    return gr.Number(value, precision=0 if spec.type.startswith("int") else None, **common)



def train_tab(ctx: AppContext, refresh_adapters: Any, refreshed: list[Any]) -> None:
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
            demo = gr.Button("Make the demo dataset", size="sm", elem_id="train-demo")
            upload_status = gr.Markdown(elem_id="train-dataset-status")
            widgets: dict[str, Any] = {}
            for row in LAYOUT:
                with gr.Row():
                    for name in row:
                        widgets[name] = form_widget(ctx, name)
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="train-start")
                resume = gr.Button("Resume (same name, from its last checkpoint)", elem_id="train-resume")
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
    demo.click(lambda: make_demo_dataset(ctx), outputs=[upload_status, dataset], api_name="make_demo_dataset")

    def _start(values: dict[str, Any], progress: Any, resume: bool = False) -> tuple[str, bool]:
        dataset_name = values.pop("dataset")
        return start_training(ctx, dataset_name, values, resume=resume), False

    form_inputs = [dataset, *(widgets[name] for name in FORM)]
    start.click(named_handler(("dataset", *FORM), _start), inputs=form_inputs, outputs=[status, finished],
                api_name="train_start")
    resume.click(named_handler(("dataset", *FORM), lambda values, progress: _start(values, progress, resume=True)),
                 inputs=form_inputs, outputs=[status, finished], api_name="train_resume")
    stop.click(lambda: stop_training(ctx), outputs=status, api_name="train_stop")

    def _poll(was_finished):
        text, losses, validations, clip, ckpt, done = poll(ctx)
        # When a run ends, list its adapter in the Generate and Compare dropdowns (once).
        updates = refresh_adapters() if done and not was_finished else tuple(gr.update() for _ in refreshed)
        return (text, losses, validations, clip, ckpt, done, *updates)

    timer.tick(_poll, inputs=finished, outputs=[status, loss_plot, validation, video, checkpoint, finished,
                                                *refreshed], api_name="train_status", queue=False)
