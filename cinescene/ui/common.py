"""Pieces every tab shares: the app context, progress and error plumbing."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from .. import architecture, loading, media, outputs, placement
from ..adapters import DEFAULT_LIBRARY, AdapterLibrary
from ..deploy import Limits
from ..errors import CinesceneError
from ..metrics import MetricsConfig
from ..progress import Event, OnEvent
from ..settings import PRESETS, ModelDefaults, ModelSpec
from ..training.runs import TrainingRuns

GPU_QUEUE = "gpu"  # the one concurrency id for everything that touches the pipeline
NONE = "none"


@dataclass
class AppContext:
    """What the app was started with; handlers read it and never change it (``runs`` tracks the trainer)."""

    spec: ModelSpec
    outputs_root: Path = field(default_factory=lambda: outputs.DEFAULT_OUTPUTS)
    library: AdapterLibrary = field(default_factory=lambda: AdapterLibrary(DEFAULT_LIBRARY))
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    banner: str | None = None
    datasets_root: Path = Path("datasets")
    runs_root: Path = Path("runs")
    limits: Limits = field(default_factory=Limits)
    runs: TrainingRuns = field(default_factory=TrainingRuns)
    # Strangers can reach the app (a Space, a non-loopback bind, a share link): requests keep ``spec``'s engine.
    engine_fixed: bool = False

    def model(self, spec: ModelSpec | None = None) -> loading.LoadedModel:
        """The pipeline for ``spec`` (default: the app's); another spec replaces the cached one."""
        if self.runs.active is not None and placement.cuda_available():
            raise CinesceneError("a training run is using the GPU; wait for it or stop it on the Train tab")
        return loading.get_model(spec or self.spec)

    def defaults(self, generations: int = 1) -> ModelDefaults:
        """The shot defaults the forms start from; on ZeroGPU, cut down until ``generations`` videos fit one call."""
        defaults = architecture.defaults_for(self.spec.model, self.spec.preset)
        gpu = self.limits.zero_gpu
        if gpu is None:
            return defaults
        height, width = media.size_for_area(480 / 832, PRESETS[defaults.preset].area)  # Wan's own aspect ratio
        return gpu.fitting_defaults(self.spec.model, defaults, height, width, generations)

    def release_gpu(self) -> None:
        """Free the cached pipeline before a training subprocess needs the GPU (nothing to free on a CPU)."""
        if placement.cuda_available():
            import torch

            loading.clear_cache()
            torch.cuda.empty_cache()

    def fingerprint(self) -> dict[str, int]:
        return architecture.fingerprint(architecture.transformer_config(self.spec.model))


def progress_callback(progress: gr.Progress, desc: str | None = None,
                      spans: dict[str, tuple[float, float, str]] | None = None) -> OnEvent:
    """Progress events (``cinescene.progress``) shown on ``progress``.

    ``spans`` maps a task to the (start, end, label) share of one bar it fills, for jobs of several tasks;
    other tasks show as done/total with ``desc`` (default: the task's name).
    """

    def on_event(event: Event) -> None:
        if event.get("type") != "progress":
            return
        task, done, total = event["task"], event["done"], event["total"]
        if spans and task in spans:
            start, end, label = spans[task]
            progress(start + (end - start) * done / max(total, 1), desc=label)
        else:
            progress((done, total), desc=desc or task, unit="steps")

    return on_event


def int_or_none(value: float | int | None) -> int | None:
    """Number widgets give floats, and 0 or empty means "automatic"."""
    if value is None or value == "" or int(value) == 0:
        return None
    return int(value)


def user_error(err: CinesceneError) -> gr.Error:
    return gr.Error(str(err), print_exception=False)


def adapter_dropdown_choices(ctx: AppContext, kind: str) -> list[tuple[str, str]]:
    """(label, value) pairs: adapters that fit the loaded model; the slow ones say so."""
    return [(NONE, NONE)] + [(i.label(), i.name) for i in ctx.library.list(kind, ctx.fingerprint())]


def named_handler(fields: tuple[str, ...], fn: Callable[[dict[str, Any], Any], Any]) -> Callable[..., Any]:
    """A gradio handler taking ``fields`` (in order) and gradio's progress tracker; calls ``fn(values, progress)``.

    gradio names an endpoint's API parameters after the handler's signature, so the signature is
    built from ``fields``: one list of names, not a second copy typed out as parameters.
    """

    def handler(*args: Any, **kwargs: Any) -> Any:
        values = dict(zip(fields, args))
        values.update({k: v for k, v in kwargs.items() if k in fields})
        progress = args[len(fields)] if len(args) > len(fields) else kwargs.get("progress", gr.Progress())
        return fn(values, progress)

    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, positional) for name in fields]
        + [inspect.Parameter("progress", positional, default=gr.Progress())])
    return handler
