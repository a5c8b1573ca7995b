"""Speed options for sampling, all through diffusers and torch: compile, attention backends, step caches.

* Regional compilation compiles one WanTransformerBlock and reuses it for all
  forty; the adapter slots are prepared before, so a hot-swap never recompiles.
* Attention backends come from diffusers' dispatcher (native SDPA, flash,
  sage, ...); a backend whose package is missing is refused by name.
* Step caches skip block computations the model would nearly repeat:
  FirstBlockCache (skip the remaining blocks when the first block's change is
  small), TaylorSeer (extrapolate block outputs between full computations),
  MagCache (skip by the magnitude of residuals; its per-model ratios are
  calibrated once with ``magcache-calibrate``).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

from . import experts, slots
from .errors import InputError
from .settings import CACHE_KINDS, ModelSpec


def attention_backends() -> list[str]:
    from diffusers.models.attention_dispatch import AttentionBackendName

    return [b.value for b in AttentionBackendName]


def set_attention(pipe: Any, backend: str) -> None:
    """Use ``backend`` in every expert (Wan2.2 A14B has two transformers)."""
    for transformer in experts.experts(pipe).values():
        if backend in (None, "", "native") and getattr(transformer, "_cinescene_attention", "native") == "native":
            continue
        if backend not in attention_backends():
            raise InputError(f"unknown attention backend {backend!r}: choose from {', '.join(attention_backends())}")
        try:
            transformer.set_attention_backend(backend)
        except (RuntimeError, ImportError) as err:
            raise InputError(f"attention backend {backend!r} is not available here: "
                             f"{str(err).splitlines()[0]}") from err
        transformer._cinescene_attention = backend


def prepare_engine(pipe: Any, state: slots.SlotState, spec: ModelSpec) -> None:
    """Apply a model spec's engine options to a freshly loaded pipeline: attention backend, then compile."""
    set_attention(pipe, spec.attention)
    if spec.compile:
        # Slots first: a compiled transformer must already hold every LoRA tensor it will ever swap.
        slots.prepare(pipe, state, slots.DEFAULT_SLOTS + (("speed",) if spec.speed_slot else ()))
        compile_blocks(pipe, spec.compile_backend)


def compile_blocks(pipe: Any, backend: str = "inductor") -> None:
    """Regional torch.compile: one graph for the repeated block, reused by every block (of every expert)."""
    for transformer in experts.experts(pipe).values():
        if getattr(transformer, "_cinescene_compiled", False):
            continue
        transformer.compile_repeated_blocks(fullgraph=True, backend=backend)
        transformer._cinescene_compiled = True


def cache_config(kind: str, steps: int, threshold: float | None = None, interval: int | None = None,
                 mag_ratios: list[float] | None = None) -> Any:
    from diffusers import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    if kind == "first-block":
        return FirstBlockCacheConfig(threshold=0.05 if threshold is None else threshold)
    if kind == "taylorseer":
        # diffusers' default identifiers ("^blocks.*attn", full-matched) miss Wan's attn1/attn2: name them.
        return TaylorSeerCacheConfig(cache_interval=interval or 5, disable_cache_before_step=3,
                                     cache_identifiers=[r"blocks\.\d+\.(attn1|attn2|ffn)"])
    if kind == "magcache":
        if not mag_ratios:
            raise InputError("MagCache needs this model's magnitude ratios: run once with --cache magcache-calibrate "
                             "(same steps), then pass the written .magcache.json with --mag-ratios")
        return MagCacheConfig(threshold=0.06 if threshold is None else threshold, num_inference_steps=steps,
                              mag_ratios=mag_ratios)
    if kind == "magcache-calibrate":
        return MagCacheConfig(calibrate=True, num_inference_steps=steps)
    raise InputError(f"unknown cache {kind!r}: choose from {', '.join(CACHE_KINDS)}")


def load_mag_ratios(path: str | None) -> list[float] | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read MagCache ratios from {path}: {err}") from err
    ratios = data.get("mag_ratios") if isinstance(data, dict) else data
    if not isinstance(ratios, list) or not all(isinstance(r, (int, float)) for r in ratios) or len(ratios) < 2:
        raise InputError(f"{path} holds no list of MagCache ratios")
    return [float(r) for r in ratios]


@contextlib.contextmanager
def step_cache(pipe: Any, kind: str, steps: int, threshold: float | None = None, interval: int | None = None,
               mag_ratios: list[float] | None = None) -> Any:
    """Enable a step cache for one generation; yields a dict that ends up in the record."""
    info: dict[str, Any] = {"kind": kind}
    if kind in (None, "", "none"):
        yield info
        return
    transformer = pipe.transformer
    config = cache_config(kind, steps, threshold, interval, mag_ratios)
    info.update({k: v for k, v in vars(config).items() if isinstance(v, (int, float, str, bool)) or v is None})
    transformer.enable_cache(config)
    printed = io.StringIO()
    try:
        # diffusers prints the calibrated MagCache ratios; catch them for the record.
        with contextlib.redirect_stdout(printed) if kind == "magcache-calibrate" else contextlib.nullcontext():
            yield info
    finally:
        transformer.disable_cache()
    if kind == "magcache-calibrate":
        found = re.findall(r"\[([-0-9.,\se]+)\]", printed.getvalue())
        info["mag_ratios"] = [float(x) for x in found[0].split(",")] if found else None
