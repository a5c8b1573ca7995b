"""The Gradio Blocks app: widgets wired to cinescene's core functions, nothing more.

Every handler turns widget values into core dataclasses, calls the core, and
turns CinesceneError into gr.Error. GPU work runs under one concurrency id so
the queue serialises it whatever tab it comes from. This package is the only
place that imports gradio.
"""

from __future__ import annotations

import gradio as gr

from ..settings import TINY_MODELS, TOY
from .adapters_tab import adapters_tab
from .common import GPU_QUEUE, AppContext, progress_callback
from .compare_tab import compare_tab
from .generate import generate_tab
from .sweep_tab import sweep_tab
from .train_tab import train_tab

__all__ = ["GPU_QUEUE", "AppContext", "build_app", "model_banner", "progress_callback"]


_REAL = ("For real shots, on a machine with a GPU run `python app.py --model Wan-AI/Wan2.1-I2V-14B-480P-Diffusers` "
         "(or the 720P id, or a local diffusers folder).")


def model_banner(model: str, auto_chosen: bool) -> str | None:
    """What a visitor must know about a stand-in model (None for a real one)."""
    why = "No CUDA GPU was found, so cinescene started" if auto_chosen else "cinescene is running"
    if model == TOY:
        return (f"**{why} on the toy model: a small Wan2.1 (2 M parameters) trained on synthetic footage of shapes "
                "at 64x112.** It follows a tilt named in the prompt (\"the camera tilts up\"), pans only sometimes, "
                "and the demo adapters `toy-teal-orange` (a look) and `toy-pan-right` (a move) show what "
                "fine-tuning does. "
                + _REAL)
    if model in TINY_MODELS:
        return (f"**{why} on the tiny offline model: its pictures are random noise.** It is here so you can try "
                "every control, adapter and metric without weights. " + _REAL)
    return None


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="cinescene", analytics_enabled=False) as demo:
        gr.Markdown("# cinescene\nWan2.1 image-to-video with your own look: generate, adapt, compare.")
        if ctx.banner:
            gr.Markdown(ctx.banner, elem_id="model-banner")
        with gr.Tab("Generate"):
            gen = generate_tab(ctx)
        with gr.Tab("Compare"):
            cmp = compare_tab(ctx)
        with gr.Tab("Sweep"):
            swp = sweep_tab(ctx)
        with gr.Tab("Adapters", elem_id="tab-adapters"):
            dropdowns = [(slot, getattr(shot, slot)) for shot in (gen, cmp, swp)
                         for slot in ("style", "motion", "speed")]
            refresh_adapters, refreshed = adapters_tab(ctx, dropdowns)
        with gr.Tab("Train"):
            if ctx.limits.train_enabled:
                train_tab(ctx, refresh_adapters, refreshed)
            else:
                gr.Markdown(ctx.limits.train_note or "Training is off here.", elem_id="train-note")
        # The library can change between page loads (CLI imports, other users): list it afresh per visit.
        demo.load(refresh_adapters, outputs=refreshed, api_name="on_load", queue=False)
    demo.queue(default_concurrency_limit=1)
    return demo
