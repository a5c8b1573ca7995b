"""Image + prompt to video with Wan2.1 I2V or Wan2.2 (A14B, TI2V-5B), through diffusers' WanImageToVideoPipeline."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import atomic, context_parallel, expert_placement, experts, media, progress, slots, speed
from .adapters import AdapterLibrary, check_name
from .errors import InputError
from .loading import LoadedModel, text_length
from .record import build_record
from .settings import (
    MAX_FRAMES,
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    MAX_STEPS,
    PRESETS,
    SIZE_MULTIPLE,
    AdapterChoice,
    SampleSettings,
)

MAX_SEED = 2**63 - 1


@dataclass
class SampleResult:
    frames: np.ndarray  # (T, H, W, 3) uint8
    settings: SampleSettings  # fully resolved: size and shift filled in
    timings: dict[str, float] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    adapters: list[dict[str, Any]] = field(default_factory=list)  # what was active, with sha256
    speed: dict[str, Any] = field(default_factory=dict)  # step cache, CFG, speed-adapter notes
    experts: dict[str, Any] = field(default_factory=dict)  # which expert ran how many forward calls, and when
    video_path: Path | None = None
    record_path: Path | None = None


def validate_settings(settings: SampleSettings, library: AdapterLibrary | None = None) -> None:
    """Raise InputError naming the first unusable value; with ``library``, every chosen adapter must be in it.

    Cheap on purpose: callers run it before loading a model or reading an image.
    """
    if not isinstance(settings.prompt, str) or not settings.prompt.strip():
        raise InputError("the prompt is empty: describe the shot")
    if len(settings.prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"the prompt is {len(settings.prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
    if len(settings.negative_prompt or "") > MAX_PROMPT_CHARS:
        raise InputError(f"the negative prompt is over {MAX_PROMPT_CHARS} characters")
    if not isinstance(settings.frames, int) or settings.frames < 1 or (settings.frames - 1) % 4:
        raise InputError(f"frames must be of the form 4k+1 (1, 5, ..., 81, ...), got {settings.frames}")
    if settings.frames > MAX_FRAMES:
        raise InputError(f"frames must be at most {MAX_FRAMES}, got {settings.frames}")
    if not isinstance(settings.steps, int) or not 1 <= settings.steps <= MAX_STEPS:
        raise InputError(f"steps must be between 1 and {MAX_STEPS}, got {settings.steps}")
    if not 0 <= settings.guidance <= 30 or not np.isfinite(settings.guidance):
        raise InputError(f"guidance must be between 0 and 30, got {settings.guidance}")
    if settings.guidance_2 is not None and not (0 <= settings.guidance_2 <= 30 and np.isfinite(settings.guidance_2)):
        raise InputError(f"guidance 2 must be between 0 and 30, got {settings.guidance_2}")
    if settings.boundary is not None and not (0 <= settings.boundary <= 1 and np.isfinite(settings.boundary)):
        raise InputError(f"boundary must be between 0 and 1 (a share of the training timesteps), got "
                         f"{settings.boundary}")
    if settings.shift is not None and not (0 < settings.shift <= 50 and np.isfinite(settings.shift)):
        raise InputError(f"shift must be above 0 and at most 50, got {settings.shift}")
    if not isinstance(settings.seed, int) or not 0 <= settings.seed <= MAX_SEED:
        raise InputError(f"seed must be an integer between 0 and {MAX_SEED}, got {settings.seed}")
    if settings.preset not in PRESETS:
        raise InputError(f"unknown size preset {settings.preset!r}: choose one of {', '.join(PRESETS)}")
    if not 1 <= settings.fps <= 120:
        raise InputError(f"fps must be between 1 and 120, got {settings.fps}")
    if settings.cache not in speed.CACHE_KINDS:
        raise InputError(f"unknown step cache {settings.cache!r}: choose from {', '.join(speed.CACHE_KINDS)}")
    if settings.cache_threshold is not None and not 0 < settings.cache_threshold < 10:
        raise InputError(f"cache threshold must be above 0 and below 10, got {settings.cache_threshold}")
    if settings.cache_interval is not None and not 1 <= settings.cache_interval <= 100:
        raise InputError(f"cache interval must be between 1 and 100, got {settings.cache_interval}")
    seen = set()
    for choice in settings.adapters:
        if choice.slot not in slots.SLOTS:
            raise InputError(f"unknown adapter slot {choice.slot!r}: {', '.join(slots.SLOTS)}")
        if choice.slot in seen:
            raise InputError(f"two adapters for the {choice.slot} slot; choose one")
        seen.add(choice.slot)
        check_name(choice.name)
        for value in (choice.strength, choice.end_strength):
            if value is not None and not (-4.0 <= value <= 4.0 and np.isfinite(value)):
                raise InputError(f"{choice.slot} strength must be between -4 and 4, got {value}")
    for name in ("height", "width"):
        value = getattr(settings, name)
        if value is None:
            continue
        if not isinstance(value, int) or value < SIZE_MULTIPLE or value % SIZE_MULTIPLE:
            raise InputError(f"{name} must be a positive multiple of {SIZE_MULTIPLE}, got {value}")
        if value > MAX_SIDE:
            raise InputError(f"{name} must be at most {MAX_SIDE}, got {value}")
    if library is not None:
        for choice in settings.adapters:
            library.get(choice.name, kind=choice.slot)


def resolve_settings(settings: SampleSettings, image_size: tuple[int, int],
                     multiple: int = SIZE_MULTIPLE) -> SampleSettings:
    """Validate and fill in size and shift. ``image_size`` is PIL's (width, height); sides are made multiples
    of ``multiple`` (the model's ``size_multiple``: 32 for Wan2.2 TI2V-5B)."""
    validate_settings(settings)
    preset = PRESETS[settings.preset]
    img_w, img_h = image_size
    height, width = settings.height, settings.width
    if height is None or width is None:
        auto_h, auto_w = media.size_for_area(img_h / img_w, preset.area, multiple=multiple)
        if height is None and width is None:
            height, width = auto_h, auto_w
        elif height is None:
            height = _round_side(width * img_h / img_w, multiple)
        else:
            width = _round_side(height * img_w / img_h, multiple)
    shift = settings.shift if settings.shift is not None else preset.shift
    return dataclasses.replace(settings, height=height, width=width, shift=shift)


def _round_side(value: float, multiple: int = SIZE_MULTIPLE) -> int:
    return int(min(MAX_SIDE // multiple * multiple, max(multiple, round(value / multiple) * multiple)))


def fit_to_model(model: LoadedModel, settings: SampleSettings) -> SampleSettings:
    """The model's own defaults where the shot leaves them open (shift, Wan2.2's second guidance and boundary),
    and an InputError for what this model cannot do."""
    if not model.two_experts:
        for name in ("guidance_2", "boundary"):
            if getattr(settings, name) is not None:
                raise InputError(f"{name.replace('_', ' ')} is for two-expert models (Wan2.2 I2V A14B); "
                                 f"{model.model_id} has one transformer")
    else:
        if settings.cache not in (None, "", "none"):
            raise InputError(f"step caches are set up for one transformer; {model.model_id} has two experts")
        guidance_2 = settings.guidance_2
        if guidance_2 is None:
            guidance_2 = model.defaults.guidance_2 if model.defaults.guidance_2 is not None else settings.guidance
        boundary = settings.boundary if settings.boundary is not None else model.defaults.boundary
        settings = dataclasses.replace(settings, guidance_2=guidance_2, boundary=boundary)
    if settings.shift is None and model.defaults.shift is not None:
        settings = dataclasses.replace(settings, shift=model.defaults.shift)
    multiple = model.size_multiple
    for name in ("height", "width"):
        value = getattr(settings, name)
        if value is not None and value % multiple:
            raise InputError(f"{name} must be a multiple of {multiple} for {model.model_id}, got {value}")
    return settings


def check_output_path(out: str | os.PathLike[str]) -> Path:
    """Refuse an output path we could not write, before any work is done."""
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"the output must be an .mp4 file, got {out.name!r}")
    if out.is_dir():
        raise InputError(f"the output path is a folder: {out}")
    parent = out.parent
    if not parent.is_dir():
        raise InputError(f"the output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise InputError(f"the output folder is not writable: {parent}")
    return out


def pipeline_kwargs(model: LoadedModel, image: Image.Image, settings: SampleSettings) -> dict[str, Any]:
    """The exact arguments cinescene passes to WanImageToVideoPipeline.__call__ (benchmarks reuse them)."""
    assert settings.height is not None and settings.width is not None, "resolve_settings first"
    return dict(
        image=media.fit_image(image, settings.width, settings.height),
        prompt=settings.prompt,
        negative_prompt=settings.negative_prompt or None,
        height=settings.height,
        width=settings.width,
        num_frames=settings.frames,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        # The low-noise expert's; diffusers refuses it on a one-expert pipeline.
        **({"guidance_scale_2": settings.guidance_2} if model.two_experts else {}),
        max_sequence_length=text_length(model.pipe),
        # A CPU generator makes the initial noise identical on every device.
        generator=torch.Generator(device="cpu").manual_seed(settings.seed),
        output_type="np",
    )


def apply_shift(pipe: Any, shift: float) -> None:
    """Set the flow shift on whichever flow scheduler the pipeline carries (UniPC or FlowMatch Euler)."""
    scheduler = pipe.scheduler
    key = "flow_shift" if "flow_shift" in scheduler.config else "shift"
    if scheduler.config.get(key) != shift:
        pipe.scheduler = type(scheduler).from_config(scheduler.config, **{key: shift})


def apply_boundary(pipe: Any, boundary: float | None) -> None:
    """Set where a two-expert pipeline switches experts; the denoising loop reads it from the pipeline's config."""
    if boundary is not None and pipe.config.boundary_ratio != boundary:
        pipe.register_to_config(boundary_ratio=boundary)


def activate_adapters(model: LoadedModel, choices: tuple[AdapterChoice, ...],
                      library: AdapterLibrary | None) -> list[dict[str, Any]]:
    """Put the chosen adapters in their slots (hot-swapping where they fit); returns their record entries.

    Slots not chosen keep whatever they hold but get strength 0, which is exactly
    the base model. A pipeline that never used adapters is left untouched. On two
    experts, each adapter goes into the slots of the experts its placement names
    (a pair's halves each on their own), and is at strength 0 on the other.
    """
    if not choices and not model.slots.prepared:
        return []
    if choices and library is None:
        raise InputError("adapters were chosen but no adapter library was given")
    wanted = slots.DEFAULT_SLOTS + (("speed",) if any(c.slot == "speed" for c in choices) else ())
    if model.parallel:
        context_parallel.check_slots(model.pipe.transformer, wanted, model.slots.ready)
    slots.prepare(model.pipe, model.slots, wanted)
    entries = []
    for choice in choices:
        assert library is not None
        info = library.get(choice.name, kind=choice.slot)
        if info.base_fingerprint != model.fingerprint():
            raise InputError(
                f"adapter {info.name!r} was made for {info.base_model} {info.base_fingerprint}, "
                f"which does not match the loaded model {model.model_id} {model.fingerprint()}"
            )
        spec = slots.SLOTS[choice.slot]
        hotswap = info.hotswap and info.rank <= spec.max_rank
        if model.parallel and not hotswap:
            context_parallel.check_side_adapter(model.pipe.transformer, info.name, info.target_modules)
        assigned = expert_placement.assign(model.family.experts, library.verified_files(info), info.placement,
                                           info.name)
        slots.load_parts(model.pipe, model.slots, spec, info.name, info.sha256,
                         {expert: (part.sha256, part.path) for expert, part in assigned.items()}, hotswappable=hotswap)
        entry = {**dataclasses.asdict(choice), "sha256": info.sha256, "rank": info.rank, "hotswap": hotswap,
                 "base_model": info.base_model}
        if model.two_experts:
            entry.update(placement=info.placement, experts=list(assigned),
                         parts={expert: part.sha256 for expert, part in assigned.items() if part.expert})
        entries.append(entry)
    return entries


def apply_speed_adapter(settings: SampleSettings,
                        library: AdapterLibrary | None) -> tuple[SampleSettings, list[str]]:
    """A step-distilled (speed) adapter brings its own sampling: few steps, no CFG, its shift. Say so."""
    choice = next((c for c in settings.adapters if c.slot == "speed"), None)
    if choice is None or library is None:
        return settings, []
    info = library.get(choice.name, kind="speed")
    sampling = {**slots.SPEED_SAMPLING, **(info.extra.get("sampling") or {})}
    note = (f"speed adapter {info.name}: {sampling['steps']} steps, guidance {sampling['guidance']}, shift "
            f"{sampling['shift']} (instead of {settings.steps} steps, guidance {settings.guidance}, shift "
            f"{settings.shift if settings.shift is not None else 'preset'})")
    changed = dataclasses.replace(settings, steps=int(sampling["steps"]), guidance=float(sampling["guidance"]),
                                  shift=float(sampling["shift"]))
    return changed, [note]


def _strengths(choices: tuple[AdapterChoice, ...], step: int, total: int) -> dict[str, float]:
    chosen = {c.slot: c.strength_at(step, total) for c in choices}
    return {slot: chosen.get(slot, 0.0) for slot in slots.SLOTS}


def sample(
    model: LoadedModel,
    image: Image.Image,
    settings: SampleSettings,
    on_event: progress.OnEvent | None = None,
    library: AdapterLibrary | None = None,
) -> SampleResult:
    """Generate one video. Same model, image, settings (adapters included) and seed give identical frames on CPU.

    Progress: a ``denoising`` task event per step, with ``timestep`` and ``elapsed`` (seconds).
    """
    settings, notes = apply_speed_adapter(settings, library)
    settings = resolve_settings(fit_to_model(model, settings), image.size, model.size_multiple)
    if model.parallel:
        context_parallel.check_shot(model.pipe.transformer.config, model.parallel.mode, model.parallel.degree,
                                    settings)
    mag_ratios = speed.load_mag_ratios(settings.mag_ratios)
    started = time.perf_counter()
    pipe = model.pipe
    total = settings.steps
    with model.lock:
        # Everything a request decides is set here, under the lock: requests never see each other's state.
        adapter_entries = activate_adapters(model, settings.adapters, library)
        scheduled = model.slots.prepared and any(c.end_strength is not None for c in settings.adapters)
        if model.slots.prepared:
            slots.set_strengths(pipe, _strengths(settings.adapters, 0, total), model.slots)
        apply_shift(pipe, float(settings.shift))
        apply_boundary(pipe, settings.boundary)
        kwargs = pipeline_kwargs(model, image, settings)
        if on_event is not None or scheduled:

            def _callback(_pipe: Any, i: int, t: torch.Tensor, _kw: dict[str, Any]) -> dict[str, Any]:
                if scheduled and i + 1 < total:
                    slots.set_strengths(pipe, _strengths(settings.adapters, i + 1, total), model.slots)
                progress.report(on_event, "denoising", i + 1, total, timestep=float(t),
                                elapsed=time.perf_counter() - started)
                return {}

            kwargs["callback_on_step_end"] = _callback
        with speed.step_cache(pipe, settings.cache, settings.steps, settings.cache_threshold,
                              settings.cache_interval, mag_ratios) as cache_info, experts.trace(pipe) as calls:
            output = pipe(**kwargs)
    frames = media.to_uint8(output.frames[0])
    result = SampleResult(frames=frames, settings=settings, timings={"sample": time.perf_counter() - started})
    result.adapters = adapter_entries
    # The pipeline runs the unconditional pass only when guidance > 1 (the first expert's guidance decides it
    # for both experts in diffusers): at 1, CFG costs nothing.
    result.speed = {"cache": cache_info, "cfg": settings.guidance > 1.0, "notes": notes}
    result.experts = calls.summary()
    return result


def sample_to_file(
    model: LoadedModel,
    image: Image.Image,
    settings: SampleSettings,
    out: str | os.PathLike[str],
    on_event: progress.OnEvent | None = None,
    library: AdapterLibrary | None = None,
    extra_record: dict[str, Any] | None = None,
) -> SampleResult:
    """Generate, then write ``out`` (mp4) and ``out`` with .json (the record), each atomically."""
    out = check_output_path(out)
    started = time.perf_counter()
    result = sample(model, image, settings, on_event=on_event, library=library)
    write_started = time.perf_counter()
    media.write_video(result.frames, out, fps=result.settings.fps)
    result.timings["write"] = time.perf_counter() - write_started
    result.timings["total"] = time.perf_counter() - started
    record = build_record(
        kind="sample",
        model=model.describe(),
        settings=result.settings.to_dict(),
        input_image={
            "width": image.width,
            "height": image.height,
            "sha256_pixels": hashlib.sha256(image.tobytes()).hexdigest(),
        },
        output={
            "video": out.name,
            "frames": int(result.frames.shape[0]),
            "height": int(result.frames.shape[1]),
            "width": int(result.frames.shape[2]),
            "fps": result.settings.fps,
        },
        adapters=result.adapters,
        speed=result.speed,
        experts=result.experts,
        elapsed_seconds={k: round(v, 4) for k, v in result.timings.items()},
        **(extra_record or {}),
    )
    record_path = out.with_suffix(".json")
    atomic.write_json(record_path, record)
    ratios = result.speed.get("cache", {}).get("mag_ratios")
    if ratios:
        atomic.write_json(out.with_suffix(".magcache.json"), {"mag_ratios": ratios, "steps": result.settings.steps,
                                                             "model": model.model_id})
    result.record, result.video_path, result.record_path = record, out, record_path
    return result
