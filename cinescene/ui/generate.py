"""The Generate tab, and the shot inputs (still, prompt, adapters, settings) it shares with Compare."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from .. import deploy, media, outputs, sampler, slots
from ..architecture import defaults_for
from ..errors import CinesceneError
from ..settings import (
    CACHE_KINDS,
    MAX_FRAMES,
    MAX_PROMPT_CHARS,
    MEMORY_CHOICES,
    PRESETS,
    TOY,
    AdapterChoice,
    ModelSpec,
    SampleSettings,
)
from .common import (
    GPU_QUEUE,
    NONE,
    AppContext,
    adapter_dropdown_choices,
    int_or_none,
    named_handler,
    progress_callback,
    user_error,
)


@dataclass
class ShotInputs:
    """The widgets that describe one shot; ``components`` is their order as handler arguments."""

    image: gr.File
    prompt: gr.Textbox
    style: gr.Dropdown
    motion: gr.Dropdown
    speed: gr.Dropdown
    components: list[Any]


# Handler parameters, in ``ShotInputs.components`` order; gradio turns them into the API's argument names.
SHOT_FIELDS = ("image", "prompt", "negative_prompt", "preset", "frames", "steps", "guidance", "seed", "shift",
               "height", "width", "style", "style_strength", "motion", "motion_strength", "style_end", "motion_end",
               "speed", "cache", "cache_threshold", "memory", "fp8", "attention", "compile_blocks", "vae_tiling")
# The engine fields among them, as ModelSpec names them. They stay in the API wherever the app runs (one API for
# every deployment); where the engine is fixed, their widgets are hidden and a request may only repeat its values.
ENGINE_INPUTS = {"memory": "memory", "fp8": "fp8", "attention": "attention", "compile_blocks": "compile",
                 "vae_tiling": "vae_tiling"}
assert set(ENGINE_INPUTS.values()) == set(deploy.ENGINE_FIELDS)
ASSETS = Path(__file__).resolve().parents[2] / "assets"  # the example stills and prompts.txt, beside the package


def shot_inputs(ctx: AppContext, prefix: str, generations: int = 1) -> ShotInputs:
    """Build the shot widgets (elem ids start with ``prefix``); defaults fit ``generations`` videos per call."""
    from .. import speed as speed_options

    defaults = ctx.defaults(generations)
    spec = ctx.spec
    engine_shown = not ctx.engine_fixed
    # A plain file input, not gr.Image: gradio would decode the upload itself, and a broken or
    # hostile file would fail inside gradio with its internals in the message. cinescene checks the
    # still (size, truncation, decompression bombs) and only then shows it.
    with gr.Row():
        image = gr.File(label="First frame (png, jpg, webp)", file_types=["image"], type="filepath",
                        elem_id=f"{prefix}-image", height=140)
        preview = gr.Image(label="Preview", interactive=False, height=140, elem_id=f"{prefix}-preview")
    prompt = gr.Textbox(label="Prompt", lines=3, max_length=MAX_PROMPT_CHARS, elem_id=f"{prefix}-prompt",
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
        negative = gr.Textbox(label="Negative prompt", lines=2, max_length=MAX_PROMPT_CHARS,
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
    with gr.Accordion("Speed and memory", open=False):
        gr.Markdown("A speed adapter (step-distilled LoRA) switches to its own few-step settings. Step caches "
                    "skip work between steps. " + ("The engine settings below reload the model when changed."
                                                   if engine_shown else "The engine is fixed by whoever started "
                                                   f"this app: {deploy.describe_engine(spec)}."),
                    elem_id=f"{prefix}-engine-note")
        with gr.Row():
            speed = gr.Dropdown(adapter_dropdown_choices(ctx, "speed"), value=NONE, label="Speed adapter",
                                elem_id=f"{prefix}-speed", allow_custom_value=True)
            cache = gr.Dropdown(list(CACHE_KINDS), value="none", label="Step cache",
                                elem_id=f"{prefix}-cache")
            cache_threshold = gr.Number(value=None, label="Cache threshold (empty: default)")
        with gr.Row(visible=engine_shown):
            memory = gr.Dropdown(list(MEMORY_CHOICES), value=spec.memory, label="Memory mode")
            attention = gr.Dropdown(speed_options.attention_backends(), value=spec.attention,
                                    label="Attention backend")
        with gr.Row(visible=engine_shown):
            fp8 = gr.Checkbox(value=spec.fp8, label="fp8 transformer weights")
            compile_blocks = gr.Checkbox(value=spec.compile, label="torch.compile the blocks")
            vae_tiling = gr.Checkbox(value=spec.vae_tiling, label="VAE tiling")
    dice.click(randomize_seed, outputs=seed, api_name=f"{prefix}_randomize_seed" if prefix != "gen" else
               "randomize_seed", queue=False)
    image.change(check_still, inputs=image, outputs=preview, api_name=f"{prefix}_preview", queue=False)
    components = [image, prompt, negative, preset, frames, steps, guidance, seed, shift, height, width,
                  style, style_strength, motion, motion_strength, style_end, motion_end,
                  speed, cache, cache_threshold, memory, fp8, attention, compile_blocks, vae_tiling]
    assert len(components) == len(SHOT_FIELDS)
    return ShotInputs(image, prompt, style, motion, speed, components)


def example_shots(folder: Path = ASSETS) -> list[list[str]]:
    """[still path, prompt] rows from ``folder/prompts.txt`` (``FILE<TAB>PROMPT`` lines, ``#`` comments).

    A missing file or still gives fewer examples, not an error: an installed package may ship without assets.
    """
    listing = folder / "prompts.txt"
    if not listing.is_file():
        return []
    rows = []
    for line in listing.read_text(encoding="utf-8").splitlines():
        name, sep, prompt = line.partition("\t")
        if line.startswith("#") or not sep or not prompt.strip() or not (folder / name.strip()).is_file():
            continue
        rows.append([str(folder / name.strip()), prompt.strip()])
    return rows


def shot_examples(shot: ShotInputs, prefix: str, model: str = "") -> gr.Examples | None:
    """Example stills and prompts under a tab's shot inputs; a click fills the form and runs nothing.

    The toy model gets the toy stills (``assets/toy``): shapes with prompts in its vocabulary.
    """
    rows = example_shots(ASSETS / "toy" if model == TOY else ASSETS)
    if not rows:
        return None
    # Never cached and never run on click: each would be a generation on the GPU queue for whoever clicks.
    return gr.Examples(rows, inputs=[shot.image, shot.prompt], cache_examples=False, run_on_click=False,
                       label="Examples (stills from assets/)", elem_id=f"{prefix}-examples",
                       example_labels=[Path(path).stem.replace("_", " ") for path, _ in rows],
                       api_name=f"{prefix}_load_example")


def adapter_choices(style: str | None, style_strength: float, motion: str | None, motion_strength: float,
                    style_end: float | None = None, motion_end: float | None = None,
                    speed: str | None = None) -> tuple[AdapterChoice, ...]:
    choices = []
    for slot, name, strength, end in (("style", style, style_strength, style_end),
                                      ("motion", motion, motion_strength, motion_end), ("speed", speed, 1.0, None)):
        if name and name != NONE:
            choices.append(AdapterChoice(slot, name, float(strength), None if end in (None, "") else float(end)))
    return tuple(choices)


def shot_settings(ctx: AppContext, v: dict[str, Any]) -> tuple[Any, SampleSettings, ModelSpec]:
    """Widget values (by SHOT_FIELDS name) -> (image, settings, model spec), every value checked."""
    if not v.get("image"):
        raise CinesceneError("no image: upload the first frame of the shot")
    if v.get("seed") is None:
        raise CinesceneError("the seed is empty: enter a whole number or press the dice")
    adapters = adapter_choices(v.get("style"), v.get("style_strength", 1.0), v.get("motion"),
                               v.get("motion_strength", 1.0), v.get("style_end"), v.get("motion_end"), v.get("speed"))
    settings = defaults_for(ctx.spec.model, ctx.spec.preset).settings(
        v.get("prompt") or "", negative_prompt=v.get("negative_prompt") or "", preset=v.get("preset"),
        frames=int(v["frames"]), steps=int(v["steps"]), guidance=float(v["guidance"]), seed=int(v["seed"]),
        shift=float(v["shift"]) if v.get("shift") else None, height=int_or_none(v.get("height")),
        width=int_or_none(v.get("width")), adapters=adapters, cache=v.get("cache") or "none",
        cache_threshold=float(v["cache_threshold"]) if v.get("cache_threshold") else None,
    )
    sampler.validate_settings(settings, ctx.library)
    return media.load_image(v["image"]), settings, engine_spec(ctx, v)


def engine_spec(ctx: AppContext, v: dict[str, Any]) -> ModelSpec:
    """The model spec a request runs on: the app's, with the engine values it sends (empty: the app's own).

    Where the engine is fixed, a request that asks for other values is refused instead.
    """
    requested = {}
    for field_name, spec_name in ENGINE_INPUTS.items():
        value = v.get(field_name)
        if value is None or value == "":
            continue
        requested[spec_name] = value if isinstance(getattr(ctx.spec, spec_name), str) else bool(value)
    if ctx.engine_fixed:
        deploy.check_engine(ctx.spec, requested)
        return ctx.spec
    return dataclasses.replace(ctx.spec, **requested)


def gpu_shot(ctx: AppContext, values: dict[str, Any],
             generations: int) -> tuple[deploy.Shot, tuple[str | None, int] | None]:
    """What a request will run, for the ZeroGPU estimate: the resolved size and the sampling after a speed adapter.

    Also (name of an installed speed adapter or None, its steps) when the request does not use one, for the proposal.
    """
    image, settings, _ = shot_settings(ctx, values)
    settings, _ = sampler.apply_speed_adapter(settings, ctx.library)
    settings = sampler.resolve_settings(settings, image.size)
    assert settings.height is not None and settings.width is not None
    shot = deploy.Shot(settings.frames, settings.height, settings.width, settings.steps, settings.guidance > 1.0,
                       generations)
    speed = None
    if not any(choice.slot == "speed" for choice in settings.adapters):
        installed = ctx.library.names("speed")
        sampling = dict(slots.SPEED_SAMPLING)
        if installed:  # its sidecar may name its own step count
            sampling.update(ctx.library.get(installed[0], kind="speed").extra.get("sampling") or {})
        speed = (installed[0] if installed else None, int(sampling["steps"]))
    return shot, speed


def generate(ctx: AppContext, values: dict[str, Any], progress: gr.Progress) -> tuple[str, dict[str, Any]]:
    try:
        image, settings, spec = shot_settings(ctx, values)
        progress(0, desc="loading model")
        model = ctx.model(spec)
        out_dir = outputs.new_request_dir(ctx.outputs_root, "sample")
        result = sampler.sample_to_file(model, image, settings, out_dir / "video.mp4", library=ctx.library,
                                        on_event=progress_callback(progress))
    except CinesceneError as err:
        raise user_error(err) from None
    for note in result.speed.get("notes", []):
        gr.Info(note)
    return str(result.video_path), result.record or {}


def shot_handler(ctx: AppContext, fn: Callable[..., Any], generations: int | Callable[[dict[str, Any]], int] = 1,
                 extra_fields: tuple[str, ...] = ()) -> Callable[..., Any]:
    """Wrap ``fn(ctx, values, progress=...)`` for an event on ``ShotInputs.components`` (then ``extra_fields``).

    On a ZeroGPU Space the call runs inside @spaces.GPU, asking for the estimated duration of
    ``generations`` videos of the requested size (a number, or a function of the request's values:
    a sweep's cell count). A request whose estimate is over the maximum is refused before that call,
    with settings that fit.
    """
    fields = SHOT_FIELDS + extra_fields
    handler = named_handler(fields, lambda values, progress: fn(ctx, values, progress=progress))
    gpu = ctx.limits.zero_gpu
    if gpu is None:
        return handler

    def count(values: dict[str, Any]) -> int:
        return generations(values) if callable(generations) else generations

    def duration(*args: Any, **kwargs: Any) -> int:
        values = {**dict(zip(fields, args)), **{k: v for k, v in kwargs.items() if k in fields}}
        try:
            return min(gpu.max_seconds, gpu.seconds(ctx.spec.model, gpu_shot(ctx, values, count(values))[0]))
        except (CinesceneError, KeyError, TypeError, ValueError):
            return 60  # bad input: the call fails in its first second anyway

    on_gpu = deploy.gpu(handler, duration)

    def checked(values: dict[str, Any], progress: Any) -> Any:
        try:
            shot, speed = gpu_shot(ctx, values, count(values))
            gpu.check(ctx.spec.model, shot, speed)
        except (CinesceneError, KeyError, TypeError, ValueError) as err:
            if not isinstance(err, CinesceneError):
                err = CinesceneError(f"unusable request: {err}")
            raise user_error(err) from None
        return on_gpu(*(values.get(name) for name in fields), progress=progress)

    return named_handler(fields, checked)


def check_still(image: str | None) -> str | None:
    """The preview of an uploaded still, after cinescene's own checks (or a clear error)."""
    if not image:
        return None
    try:
        media.load_image(image)
    except CinesceneError as err:
        raise user_error(err) from None
    return image


def randomize_seed() -> int:
    return secrets.randbelow(2**32)


def generate_tab(ctx: AppContext) -> ShotInputs:
    with gr.Row():
        with gr.Column(scale=1):
            shot = shot_inputs(ctx, "gen", generations=1)
            run = gr.Button("Generate", variant="primary", elem_id="gen-run")
            shot_examples(shot, "gen", ctx.spec.model)
        with gr.Column(scale=1):
            video = gr.Video(label="Result", elem_id="gen-video", autoplay=True, loop=True)
            record = gr.JSON(label="Record (written beside the video)", elem_id="gen-record")

    run.click(shot_handler(ctx, generate), inputs=shot.components, outputs=[video, record], api_name="generate",
              concurrency_id=GPU_QUEUE, concurrency_limit=1)
    return shot
