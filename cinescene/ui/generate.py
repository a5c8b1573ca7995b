"""The Generate tab, and the shot inputs (still, prompt, adapters, settings) it shares with Compare."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import loading, media, outputs, sampler
from ..config import MAX_FRAMES, PRESETS, AdapterChoice, SampleSettings
from ..errors import CinesceneError
from .common import (
    GPU_QUEUE,
    NONE,
    AppContext,
    adapter_dropdown_choices,
    int_or_none,
    progress_callback,
    user_error,
)


@dataclass
class ShotInputs:
    """The widgets that describe one shot; ``components`` is their order as handler arguments."""

    image: gr.Image
    prompt: gr.Textbox
    style: gr.Dropdown
    motion: gr.Dropdown
    components: list[Any]


def shot_inputs(ctx: AppContext, prefix: str) -> ShotInputs:
    """Build the shot widgets (elem ids start with ``prefix``)."""
    defaults = loading.defaults_for(ctx.spec.model)
    image = gr.Image(label="First frame", type="filepath", sources=["upload", "clipboard"], elem_id=f"{prefix}-image")
    prompt = gr.Textbox(label="Prompt", lines=3, max_length=2000, elem_id=f"{prefix}-prompt",
                        placeholder="A slow dolly-in on ..., golden hour, 35mm film grain")
    with gr.Row():
        # Custom values allowed: the library changes under a loaded page (CLI imports, API calls), and the
        # core checks every name against it anyway.
        style = gr.Dropdown(adapter_dropdown_choices(ctx, "style"), value=NONE, label="Style adapter",
                            elem_id=f"{prefix}-style", allow_custom_value=True)
        style_strength = gr.Slider(0, 2, value=1.0, step=0.05, label="Style strength")
    with gr.Row():
        motion = gr.Dropdown(adapter_dropdown_choices(ctx, "motion"), value=NONE, label="Motion adapter",
                             elem_id=f"{prefix}-motion", allow_custom_value=True)
        motion_strength = gr.Slider(0, 2, value=1.0, step=0.05, label="Motion strength")
    with gr.Row():
        preset = gr.Dropdown(list(PRESETS), value=defaults.preset, label="Size preset")
        frames = gr.Slider(1, MAX_FRAMES, value=defaults.frames, step=4, label="Frames (4k+1)")
    with gr.Row():
        steps = gr.Slider(1, 100, value=defaults.steps, step=1, label="Steps")
        guidance = gr.Slider(0, 15, value=defaults.guidance, step=0.5, label="Guidance")
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, elem_id=f"{prefix}-seed")
        dice = gr.Button("🎲 Random seed", size="sm")
    with gr.Accordion("Advanced", open=False):
        negative = gr.Textbox(label="Negative prompt", lines=2, max_length=2000,
                              value=defaults.settings().negative_prompt)
        shift = gr.Number(value=None, label="Flow shift (empty: 3.0 at 480P, 5.0 at 720P)")
        with gr.Row():
            height = gr.Number(value=0, precision=0, label="Height (0: from the image)")
            width = gr.Number(value=0, precision=0, label="Width (0: from the image)")
        gr.Markdown("Strength at the last step (empty: constant). Strength then ramps linearly over the "
                    "denoising steps, e.g. motion strong early and style strong late.")
        with gr.Row():
            style_end = gr.Number(value=None, label="Style end strength")
            motion_end = gr.Number(value=None, label="Motion end strength")
    dice.click(randomize_seed, outputs=seed, api_name=f"{prefix}_randomize_seed" if prefix != "gen" else
               "randomize_seed", queue=False)
    components = [image, prompt, negative, preset, frames, steps, guidance, seed, shift, height, width,
                  style, style_strength, motion, motion_strength, style_end, motion_end]
    return ShotInputs(image, prompt, style, motion, components)


def adapter_choices(style: str | None, style_strength: float, motion: str | None, motion_strength: float,
                    style_end: float | None = None, motion_end: float | None = None) -> tuple[AdapterChoice, ...]:
    choices = []
    for slot, name, strength, end in (("style", style, style_strength, style_end),
                                      ("motion", motion, motion_strength, motion_end)):
        if name and name != NONE:
            choices.append(AdapterChoice(slot, name, float(strength), None if end in (None, "") else float(end)))
    return tuple(choices)


def shot_settings(ctx: AppContext, image_path: str | None, prompt: str, negative_prompt: str, preset: str,
                  frames: float, steps: float, guidance: float, seed: float, shift: float | None,
                  height: float | None, width: float | None, style: str | None, style_strength: float,
                  motion: str | None, motion_strength: float, style_end: float | None,
                  motion_end: float | None) -> tuple[Any, SampleSettings]:
    """Widget values -> (image, settings), every value checked; raises CinesceneError."""
    if not image_path:
        raise CinesceneError("no image: upload the first frame of the shot")
    if seed is None:
        raise CinesceneError("the seed is empty: enter a whole number or press the dice")
    adapters = adapter_choices(style, style_strength, motion, motion_strength, style_end, motion_end)
    settings = loading.defaults_for(ctx.spec.model).settings(
        prompt or "", negative_prompt=negative_prompt or "", preset=preset, frames=int(frames), steps=int(steps),
        guidance=float(guidance), seed=int(seed), shift=float(shift) if shift else None,
        height=int_or_none(height), width=int_or_none(width), adapters=adapters,
    )
    sampler.validate_settings(settings)
    image = media.load_image(image_path)
    for choice in adapters:
        ctx.library.get(choice.name, kind=choice.slot)
    return image, settings


def generate(ctx: AppContext, *values: Any, progress: gr.Progress) -> tuple[str, dict[str, Any]]:
    try:
        image, settings = shot_settings(ctx, *values)
        progress(0, desc="loading model")
        model = ctx.model()
        out_dir = outputs.new_request_dir(ctx.outputs_root, "sample")
        result = sampler.sample_to_file(model, image, settings, out_dir / "video.mp4", library=ctx.library,
                                        on_step=progress_callback(progress, "denoising"))
    except CinesceneError as err:
        raise user_error(err) from None
    return str(result.video_path), result.record or {}


def shot_handler(ctx: AppContext, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn(ctx, *shot values, progress=...)`` for an event on ``ShotInputs.components``.

    The parameters are spelled out because gradio turns them into the API's argument names.
    """

    def handler(image, prompt, negative_prompt, preset, frames, steps, guidance, seed, shift, height, width,
                style, style_strength, motion, motion_strength, style_end, motion_end, progress=gr.Progress()):
        return fn(ctx, image, prompt, negative_prompt, preset, frames, steps, guidance, seed, shift, height, width,
                  style, style_strength, motion, motion_strength, style_end, motion_end, progress=progress)

    return handler


def randomize_seed() -> int:
    return secrets.randbelow(2**32)


def generate_tab(ctx: AppContext) -> ShotInputs:
    with gr.Row():
        with gr.Column(scale=1):
            shot = shot_inputs(ctx, "gen")
            run = gr.Button("Generate", variant="primary", elem_id="gen-run")
        with gr.Column(scale=1):
            video = gr.Video(label="Result", elem_id="gen-video", autoplay=True, loop=True)
            record = gr.JSON(label="Record (written beside the video)", elem_id="gen-record")

    run.click(shot_handler(ctx, generate), inputs=shot.components, outputs=[video, record], api_name="generate",
              concurrency_id=GPU_QUEUE, concurrency_limit=1)
    return shot
