"""Pieces every tab shares: the app context, progress and error plumbing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from .. import loading, outputs, sampler
from ..adapters import DEFAULT_LIBRARY, AdapterLibrary
from ..config import ModelSpec
from ..deploy import Limits
from ..errors import CinesceneError
from ..metrics import MetricsConfig
from ..runs import TrainingRuns

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

    def model(self, spec: ModelSpec | None = None) -> loading.LoadedModel:
        """The pipeline for ``spec`` (default: the app's); another spec replaces the cached one."""
        if self.runs.active is not None and loading.cuda_available():
            raise CinesceneError("a training run is using the GPU; wait for it or stop it on the Train tab")
        return loading.get_model(spec or self.spec)

    def release_gpu(self) -> None:
        """Free the cached pipeline before a training subprocess needs the GPU (nothing to free on a CPU)."""
        if loading.cuda_available():
            import torch

            loading.clear_cache()
            torch.cuda.empty_cache()

    def fingerprint(self) -> dict[str, int]:
        return loading.fingerprint(loading.transformer_config(self.spec.model))


def progress_callback(progress: gr.Progress, desc: str) -> sampler.StepCallback:
    def on_step(step: int, total: int, info: dict[str, Any]) -> None:
        progress((step, total), desc=desc, unit="steps")

    return on_step


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
