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
from .adapters import DEFAULT_LIBRARY, KINDS, AdapterLibrary
from .config import MAX_FRAMES, PRESETS, AdapterChoice, ModelSpec
from .errors import CinesceneError

GPU_QUEUE = "gpu"  # the one concurrency id for everything that touches the pipeline
NONE = "none"


@dataclass
class AppContext:
    """What the app was started with; handlers read it, never mutate it."""

    spec: ModelSpec
    outputs_root: Path = field(default_factory=lambda: outputs.DEFAULT_OUTPUTS)
    library: AdapterLibrary = field(default_factory=lambda: AdapterLibrary(DEFAULT_LIBRARY))
    banner: str | None = None

    def model(self) -> loading.LoadedModel:
        return loading.get_model(self.spec)

    def fingerprint(self) -> dict[str, int]:
        return loading.fingerprint(loading.transformer_config(self.spec.model))


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


def _user_error(err: CinesceneError) -> gr.Error:
    return gr.Error(str(err), print_exception=False)


# -- Generate ------------------------------------------------------------------------------------------------


def adapter_choices(style: str | None, style_strength: float, motion: str | None, motion_strength: float,
                    style_end: float | None = None, motion_end: float | None = None) -> tuple[AdapterChoice, ...]:
    choices = []
    for slot, name, strength, end in (("style", style, style_strength, style_end),
                                      ("motion", motion, motion_strength, motion_end)):
        if name and name != NONE:
            choices.append(AdapterChoice(slot, name, float(strength), None if end in (None, "") else float(end)))
    return tuple(choices)


def generate(ctx: AppContext, image_path: str | None, prompt: str, negative_prompt: str, preset: str,
             frames: float, steps: float, guidance: float, seed: float, shift: float | None,
             height: float | None, width: float | None, adapters: tuple[AdapterChoice, ...],
             progress: gr.Progress) -> tuple[str, dict[str, Any]]:
    try:
        if not image_path:
            raise CinesceneError("no image: upload the first frame of the shot")
        if seed is None:
            raise CinesceneError("the seed is empty: enter a whole number or press the dice")
        settings = loading.defaults_for(ctx.spec.model).settings(
            prompt or "", negative_prompt=negative_prompt or "", preset=preset, frames=int(frames), steps=int(steps),
            guidance=float(guidance), seed=int(seed), shift=float(shift) if shift else None,
            height=_int_or_none(height), width=_int_or_none(width), adapters=adapters,
        )
        sampler.validate_settings(settings)
        image = media.load_image(image_path)
        for choice in adapters:
            ctx.library.get(choice.name, kind=choice.slot)
        progress(0, desc="loading model")
        model = ctx.model()
        out_dir = outputs.new_request_dir(ctx.outputs_root, "sample")
        result = sampler.sample_to_file(model, image, settings, out_dir / "video.mp4", library=ctx.library,
                                        on_step=_progress_callback(progress, "denoising"))
    except CinesceneError as err:
        raise _user_error(err) from None
    return str(result.video_path), result.record or {}


def randomize_seed() -> int:
    return secrets.randbelow(2**32)


def adapter_dropdown_choices(ctx: AppContext, kind: str) -> list[tuple[str, str]]:
    """(label, value) pairs: adapters that fit the loaded model; the slow ones say so."""
    return [(NONE, NONE)] + [(i.label(), i.name) for i in ctx.library.list(kind, ctx.fingerprint())]


def _generate_tab(ctx: AppContext) -> dict[str, gr.Dropdown]:
    defaults = loading.defaults_for(ctx.spec.model)
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(label="First frame", type="filepath", sources=["upload", "clipboard"], elem_id="gen-image")
            prompt = gr.Textbox(label="Prompt", lines=3, max_length=2000, elem_id="gen-prompt",
                                placeholder="A slow dolly-in on ..., golden hour, 35mm film grain")
            with gr.Row():
                style = gr.Dropdown(adapter_dropdown_choices(ctx, "style"), value=NONE, label="Style adapter",
                                    elem_id="gen-style")
                style_strength = gr.Slider(0, 2, value=1.0, step=0.05, label="Style strength")
            with gr.Row():
                motion = gr.Dropdown(adapter_dropdown_choices(ctx, "motion"), value=NONE, label="Motion adapter",
                                     elem_id="gen-motion")
                motion_strength = gr.Slider(0, 2, value=1.0, step=0.05, label="Motion strength")
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
                gr.Markdown("Strength at the last step (empty: constant). Strength then ramps linearly over the "
                            "denoising steps, e.g. motion strong early and style strong late.")
                with gr.Row():
                    style_end = gr.Number(value=None, label="Style end strength")
                    motion_end = gr.Number(value=None, label="Motion end strength")
            run = gr.Button("Generate", variant="primary", elem_id="gen-run")
        with gr.Column(scale=1):
            video = gr.Video(label="Result", elem_id="gen-video", autoplay=True, loop=True)
            record = gr.JSON(label="Record (written beside the video)", elem_id="gen-record")

    dice.click(randomize_seed, outputs=seed, api_name="randomize_seed", queue=False)

    # Named parameters: gradio turns them into the API's argument names.
    def _run(image, prompt, negative_prompt, preset, frames, steps, guidance, seed, shift, height, width,
             style, style_strength, motion, motion_strength, style_end, motion_end, progress=gr.Progress()):
        chosen = adapter_choices(style, style_strength, motion, motion_strength, style_end, motion_end)
        return generate(ctx, image, prompt, negative_prompt, preset, frames, steps, guidance, seed, shift,
                        height, width, chosen, progress)

    run.click(
        _run,
        inputs=[image, prompt, negative, preset, frames, steps, guidance, seed, shift, height, width,
                style, style_strength, motion, motion_strength, style_end, motion_end],
        outputs=[video, record],
        api_name="generate",
        concurrency_id=GPU_QUEUE,
        concurrency_limit=1,
    )
    return {"style": style, "motion": motion}


# -- Adapters ------------------------------------------------------------------------------------------------

TABLE_HEADERS = ["name", "kind", "rank", "targets", "blocks", "size (MB)", "hot-swap", "base model", "description"]


def adapter_table(ctx: AppContext) -> list[list[Any]]:
    rows = []
    for i in ctx.library.list():
        rows.append([i.name, i.kind, i.rank, ", ".join(i.target_modules), i.blocks,
                     round(i.size_bytes / 2**20, 2), "yes" if i.hotswap else f"no: {i.hotswap_note}",
                     i.base_model, i.description])
    return rows


def import_adapter(ctx: AppContext, file: str | None, kind: str, name: str, description: str,
                   strength: float) -> str:
    try:
        if not file:
            raise CinesceneError("no file: choose a .safetensors LoRA to import")
        if kind not in KINDS:
            raise CinesceneError(f"choose the adapter kind: {' or '.join(KINDS)}")
        model = ctx.model()
        source = Path(file)
        info = ctx.library.import_file(
            source, kind, name=(name or "").strip() or None, base_model=model.model_id,
            transformer=model.pipe.transformer, description=description or "", default_strength=float(strength),
        )
    except CinesceneError as err:
        raise _user_error(err) from None
    note = "hot-swappable" if info.hotswap else f"slower, non-hot-swap load: {info.hotswap_note}"
    return f"Imported **{info.name}** ({info.kind}, rank {info.rank}, from {info.source_format} layout): {note}."


def remove_adapter(ctx: AppContext, name: str | None) -> str:
    try:
        if not name:
            raise CinesceneError("choose an adapter to remove")
        info = ctx.library.remove(name)
    except CinesceneError as err:
        raise _user_error(err) from None
    return f"Removed {info.kind} adapter **{info.name}**."


def _adapters_tab(ctx: AppContext, dropdowns: dict[str, gr.Dropdown]) -> tuple[Any, list[Any]]:
    gr.Markdown("Style adapters carry a look (cross-attention), motion adapters carry movement (self-attention). "
                "Adapters that fit their slot switch in place in milliseconds; others load more slowly.")
    table = gr.Dataframe(value=adapter_table(ctx), headers=TABLE_HEADERS, interactive=False, elem_id="ad-table",
                         wrap=True)
    status = gr.Markdown(elem_id="ad-status")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Import")
            file = gr.File(label="LoRA (.safetensors: diffusers, peft, ComfyUI, musubi, DiffSynth)",
                           file_types=[".safetensors"], type="filepath", elem_id="ad-file")
            kind = gr.Radio(list(KINDS), value="style", label="Kind", elem_id="ad-kind")
            name = gr.Textbox(label="Name (empty: from the file name)", max_length=64, elem_id="ad-name")
            description = gr.Textbox(label="Description", max_length=2000)
            strength = gr.Number(value=1.0, label="Default strength")
            do_import = gr.Button("Import", variant="primary", elem_id="ad-import")
        with gr.Column():
            gr.Markdown("### Remove")
            victim = gr.Dropdown([i.name for i in ctx.library.list()], label="Adapter", elem_id="ad-victim")
            ask = gr.Button("Remove…", elem_id="ad-remove")
            with gr.Group(visible=False) as confirm:
                question = gr.Markdown()
                with gr.Row():
                    yes = gr.Button("Yes, delete it", variant="stop", elem_id="ad-remove-yes")
                    no = gr.Button("Cancel")
            refresh = gr.Button("Refresh list")

    def _refresh() -> tuple[Any, ...]:
        return (
            adapter_table(ctx),
            gr.update(choices=adapter_dropdown_choices(ctx, "style")),
            gr.update(choices=adapter_dropdown_choices(ctx, "motion")),
            gr.update(choices=[i.name for i in ctx.library.list()], value=None),
        )

    refreshed = [table, dropdowns["style"], dropdowns["motion"], victim]

    def _import(file, kind, name, description, strength):
        return import_adapter(ctx, file, kind, name, description, strength)

    def _refresh_and_clear() -> tuple[Any, ...]:
        return (*_refresh(), None, "", "")

    do_import.click(_import, inputs=[file, kind, name, description, strength], outputs=status,
                    api_name="import_adapter", concurrency_id=GPU_QUEUE).success(
        _refresh_and_clear, outputs=[*refreshed, file, name, description], api_name="refresh_after_import")

    def _ask(name):
        if not name:
            raise gr.Error("choose an adapter to remove", print_exception=False)
        return gr.update(visible=True), f"Delete **{name}** and its sidecar for good?"

    ask.click(_ask, inputs=victim, outputs=[confirm, question], api_name="ask_remove", queue=False)
    no.click(lambda: gr.update(visible=False), outputs=confirm, api_name="cancel_remove", queue=False)

    def _remove(name):
        return remove_adapter(ctx, name), gr.update(visible=False)

    yes.click(_remove, inputs=victim, outputs=[status, confirm], api_name="remove_adapter",
              concurrency_id=GPU_QUEUE).success(_refresh, outputs=refreshed, api_name="refresh_after_remove")
    refresh.click(_refresh, outputs=refreshed, api_name="list_adapters", queue=False)
    return _refresh, refreshed


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="cinescene", analytics_enabled=False) as demo:
        gr.Markdown("# cinescene\nWan2.1 image-to-video with your own look: generate, adapt, compare.")
        if ctx.banner:
            gr.Markdown(ctx.banner, elem_id="tiny-banner")
        with gr.Tab("Generate"):
            dropdowns = _generate_tab(ctx)
        with gr.Tab("Adapters", elem_id="tab-adapters"):
            refresh_adapters, refreshed = _adapters_tab(ctx, dropdowns)
        # The library can change between page loads (CLI imports, other users): list it afresh per visit.
        demo.load(refresh_adapters, outputs=refreshed, api_name="on_load", queue=False)
    demo.queue(default_concurrency_limit=1)
    return demo
