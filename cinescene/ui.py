"""The Gradio Blocks app: widgets wired to cinescene's core functions, nothing more.

Every handler turns widget values into core dataclasses, calls the core, and
turns CinesceneError into gr.Error. GPU work runs under one concurrency id so
the queue serialises it whatever tab it comes from.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from . import loading, media, outputs, sampler
from .config import MAX_FRAMES, PRESETS, ModelSpec
from .errors import CinesceneError

GPU_QUEUE = "gpu"  # the one concurrency id for everything that touches the pipeline


@dataclass
class AppContext:
    """What the app was started with; handlers read it, never mutate it."""

    spec: ModelSpec
    outputs_root: Path = field(default_factory=lambda: outputs.DEFAULT_OUTPUTS)
    banner: str | None = None


def tiny_banner(auto_chosen: bool) -> str:
    why = "No CUDA GPU was found, so cinescene started" if auto_chosen else "cinescene is running"
    return (
        f"**{why} on the tiny offline model: its pictures are random noise.** It is here so you can try "
        "every control, adapter and metric without weights. For real shots, on a machine with a GPU run "
        "`python app.py --model Wan-AI/Wan2.1-I2V-14B-480P-Diffusers` (or the 720P id, or a local diffusers folder)."
    )


def _progress_callback(progress: gr.Progress, desc: str) -> sampler.StepCallback:
    def on_step(step: int, total: int, info: dict[str, Any]) -> None:
        progress((step, total), desc=desc, unit="steps")

    return on_step


def _int_or_none(value: float | int | None) -> int | None:
    """Number widgets give floats, and 0 or empty means "automatic"."""
    if value is None or value == "" or int(value) == 0:
        return None
    return int(value)


def generate(
    ctx: AppContext,
    image_path: str | None,
    prompt: str,
    negative_prompt: str,
    preset: str,
    frames: float,
    steps: float,
    guidance: float,
    seed: float,
    shift: float | None,
    height: float | None,
    width: float | None,
    progress: gr.Progress,
) -> tuple[str, dict[str, Any]]:
    try:
        if not image_path:
            raise CinesceneError("no image: upload the first frame of the shot")
        if seed is None:
            raise CinesceneError("the seed is empty: enter a whole number or press the dice")
        defaults = loading.defaults_for(ctx.spec.model)
        settings = defaults.settings(
            prompt or "",
            negative_prompt=negative_prompt or "",
            preset=preset,
            frames=int(frames),
            steps=int(steps),
            guidance=float(guidance),
            seed=int(seed),
            shift=float(shift) if shift else None,
            height=_int_or_none(height),
            width=_int_or_none(width),
        )
        sampler.validate_settings(settings)
        image = media.load_image(image_path)
        progress(0, desc="loading model")
        model = loading.get_model(ctx.spec)
        out_dir = outputs.new_request_dir(ctx.outputs_root, "sample")
        result = sampler.sample_to_file(
            model, image, settings, out_dir / "video.mp4", on_step=_progress_callback(progress, "denoising")
        )
    except CinesceneError as err:
        raise gr.Error(str(err), print_exception=False) from None
    return str(result.video_path), result.record or {}


def randomize_seed() -> int:
    return secrets.randbelow(2**32)


def _generate_tab(ctx: AppContext) -> None:
    defaults = loading.defaults_for(ctx.spec.model)
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(label="First frame", type="filepath", sources=["upload", "clipboard"], elem_id="gen-image")
            prompt = gr.Textbox(label="Prompt", lines=3, max_length=2000, elem_id="gen-prompt",
                                placeholder="A slow dolly-in on ..., golden hour, 35mm film grain")
            with gr.Row():
                preset = gr.Dropdown(list(PRESETS), value=defaults.preset, label="Size preset")
                frames = gr.Slider(1, MAX_FRAMES, value=defaults.frames, step=4, label="Frames (4k+1)")
            with gr.Row():
                steps = gr.Slider(1, 100, value=defaults.steps, step=1, label="Steps")
                guidance = gr.Slider(0, 15, value=defaults.guidance, step=0.5, label="Guidance")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, elem_id="gen-seed")
                dice = gr.Button("🎲 Random seed", size="sm")
            with gr.Accordion("Advanced", open=False):
                negative = gr.Textbox(label="Negative prompt", lines=2, max_length=2000,
                                      value=defaults.settings().negative_prompt)
                shift = gr.Number(value=None, label="Flow shift (empty: 3.0 at 480P, 5.0 at 720P)")
                with gr.Row():
                    height = gr.Number(value=0, precision=0, label="Height (0: from the image)")
                    width = gr.Number(value=0, precision=0, label="Width (0: from the image)")
            run = gr.Button("Generate", variant="primary", elem_id="gen-run")
        with gr.Column(scale=1):
            video = gr.Video(label="Result", elem_id="gen-video", autoplay=True, loop=True)
            record = gr.JSON(label="Record (written beside the video)", elem_id="gen-record")

    dice.click(randomize_seed, outputs=seed, api_name="randomize_seed", queue=False)

    # Named parameters: gradio turns them into the API's argument names.
    def _run(image, prompt, negative_prompt, preset, frames, steps, guidance, seed, shift, height, width,
             progress=gr.Progress()):
        return generate(ctx, image, prompt, negative_prompt, preset, frames, steps, guidance, seed, shift,
                        height, width, progress)

    run.click(
        _run,
        inputs=[image, prompt, negative, preset, frames, steps, guidance, seed, shift, height, width],
        outputs=[video, record],
        api_name="generate",
        concurrency_id=GPU_QUEUE,
        concurrency_limit=1,
    )


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="cinescene", analytics_enabled=False) as demo:
        gr.Markdown("# cinescene\nWan2.1 image-to-video with your own look: generate, adapt, compare.")
        if ctx.banner:
            gr.Markdown(ctx.banner, elem_id="tiny-banner")
        with gr.Tab("Generate"):
            _generate_tab(ctx)
    demo.queue(default_concurrency_limit=1)
    return demo
