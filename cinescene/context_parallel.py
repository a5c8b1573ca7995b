"""One shot on several processes: diffusers' context parallelism (Ulysses or ring attention) under torchrun.

``torchrun --nproc_per_node N -m cinescene sample --parallel ulysses|ring ...`` starts N processes. Each
joins one process group (nccl between GPUs, gloo between CPUs), loads the whole pipeline on its own device
(the GPU of its ``LOCAL_RANK``, or the CPU) and runs the same shot with the same seed, while diffusers splits
the transformer's sequence between them (``ModelMixin.enable_parallelism`` with a ``ContextParallelConfig``
of degree N, following Wan's own ``_cp_plan``): Ulysses exchanges heads all-to-all so that each process
attends over the whole sequence for 1/N of the heads; ring passes keys and values around and merges the
partial attentions. The encoders and the VAE run whole in every process; every process ends with the same
frames, and only rank 0 writes them.

What does not combine is refused, with the reason, before the work it would spoil: ``check_spec`` before
anything loads, ``check_shot`` before a shot, ``check_slots`` and ``check_side_adapter`` before an adapter
changes the transformer.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch

from . import budget, experts, placement, slots
from .errors import InputError
from .settings import PARALLEL_MODES, ModelSpec, SampleSettings


@dataclass(frozen=True)
class World:
    """The processes one shot runs on, as this process sees them."""

    mode: str  # ulysses | ring
    degree: int  # how many processes share the sequence (all of them)
    backend: str  # the process group's: nccl | gloo
    rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """The process that writes files and talks to the user."""
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "degree": self.degree, "backend": self.backend}


def launched_processes() -> int:
    """How many processes the launcher started for this run: torchrun's ``WORLD_SIZE``, 1 without one."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(text)
    except ValueError:
        raise InputError(f"WORLD_SIZE={text!r} is not a number of processes") from None


def device_for(spec: ModelSpec) -> torch.device:
    """This process's device: the GPU of its ``LOCAL_RANK`` on a CUDA machine, else the CPU."""
    cuda = placement.cuda_available()
    if spec.device == "cpu" or (spec.device == "auto" and not cuda):
        if cuda:
            # diffusers builds its device mesh on the machine's accelerator whatever the model's device is.
            raise InputError("--parallel with --device cpu on a machine with GPUs: diffusers' context parallelism "
                             "runs on the GPUs here (leave --device auto)")
        return torch.device("cpu")
    if spec.device not in ("auto", "cuda"):
        raise InputError(f"with --parallel every process takes the GPU of its LOCAL_RANK, and --device {spec.device} "
                         "would put them all on one: leave --device auto and choose the GPUs with "
                         "CUDA_VISIBLE_DEVICES")
    placement.resolve_device(spec.device)  # the usual error on a machine without CUDA
    local, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
    if local >= count:
        raise InputError(f"process {local} on this machine has no GPU of its own: {count} visible; start at most "
                         f"{count} (torchrun --nproc_per_node {count})")
    return torch.device("cuda", local)


def check_spec(spec: ModelSpec) -> int:
    """Refuse a parallel engine that cannot run, before anything loads; returns the degree (1 without one)."""
    if spec.parallel not in PARALLEL_MODES:
        raise InputError(f"unknown parallel mode {spec.parallel!r}: choose one of {', '.join(PARALLEL_MODES)}")
    if spec.parallel == "none":
        return 1
    flag = f"--parallel {spec.parallel}"
    degree = launched_processes()
    if degree < 2:
        raise InputError(f"{flag} splits one shot across processes: start it with torchrun --nproc_per_node N "
                         "-m cinescene sample ... (N at least 2); this is a single process")
    if spec.memory != "none":
        raise InputError(f"{flag} keeps the whole pipeline on every process's device: --memory {spec.memory} is not "
                         "supported with it (--fp8 halves the transformer instead)")
    if spec.compile:
        raise InputError(f"{flag} does not combine with --compile: torch.compile cannot trace the hook by which "
                         "diffusers splits the sequence at the first block (dynamo: unsupported hasattr call in "
                         "inspect.signature)")
    device = device_for(spec)
    if spec.parallel == "ring":
        check_ring_backend(spec.attention, device)
    return degree


def check_ring_backend(backend: str, device: torch.device) -> None:
    """Ring attention merges the processes' partial attentions by their log-sum-exp: the backend must return it.

    Asked of the backend itself, once, on a few zeros: diffusers' dispatcher knows which backends can.
    """
    from diffusers.models.attention_dispatch import dispatch_attention_fn

    zeros = torch.zeros(1, 2, 1, 128, device=device, dtype=placement.compute_dtype(device))  # B, S, heads, 128
    try:
        dispatch_attention_fn(zeros, zeros, zeros, attention_kwargs={"return_lse": True}, backend=backend)
    except Exception as err:  # noqa: BLE001 - whatever the backend says, ring attention cannot use it
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = ("; no attention backend with context parallelism runs on a CPU and returns it: use --parallel "
                "ulysses" if device.type == "cpu" else "; --attention _native_cudnn, flash or sage return it")
        raise InputError(f"--parallel ring merges the processes' partial attentions by their log-sum-exp, which "
                         f"the {backend} attention backend cannot give here ({reason}){hint}") from err


def check_shot(config: Mapping[str, Any], mode: str, degree: int, settings: SampleSettings) -> None:
    """Refuse a shot the processes cannot share; ``config`` is the transformer's, ``settings`` resolved.

    Ulysses gives each process whole heads, so the heads must divide by the degree; both modes cut the
    sequence into equal parts, so its tokens must too.
    """
    if mode == "none":
        return
    heads = int(config["num_attention_heads"])
    if mode == "ulysses" and heads % degree:
        raise InputError(f"--parallel ulysses gives each process whole attention heads, and this model's {heads} "
                         f"heads do not divide among {degree} processes: start a number of processes that divides "
                         f"{heads}")
    assert settings.height is not None and settings.width is not None, "resolve the settings first"
    patch = tuple(config.get("patch_size") or (1, 2, 2))
    tokens, arithmetic = budget.tokens(settings.height, settings.width, settings.frames, patch)  # type: ignore[arg-type]
    if tokens % degree:
        grid = arithmetic.split("-> ")[-1]
        raise InputError(f"--parallel {mode} cuts the shot's sequence into {degree} equal parts, and a "
                         f"{settings.frames}-frame shot at {settings.width}x{settings.height} makes {grid}: choose "
                         f"a size or frame count whose token count divides by {degree}")
    if settings.cache != "none":
        raise InputError(f"--cache {settings.cache} is not supported with --parallel: first-block decides from what "
                         "each process holds, so the processes could take different paths and wait on each other "
                         "for ever, and the other caches have not been tried with it")


def gathered_modules(transformer: torch.nn.Module) -> list[str]:
    """The modules whose output diffusers gathers back from the processes (Wan's output head, ``proj_out``)."""
    plan = getattr(type(transformer), "_cp_plan", None) or {}
    return [name for name, entry in plan.items() if not isinstance(entry, dict)]  # dicts split inputs


def check_slots(transformer: torch.nn.Module, wanted: tuple[str, ...], ready: list[str]) -> None:
    """A slot that wraps a gathered module must have been prepared before parallelism was enabled (``enable``).

    Prepared later, peft would wrap the module the gather hook sits on: the LoRA branch would add its share of
    the sequence to the gathered whole.
    """
    gathered = gathered_modules(transformer)
    for name in wanted:
        touched = [m for m in gathered if slots.SLOTS[name].matches(m)]
        if name not in ready and touched:
            raise InputError(f"with --parallel the {name} slot must be prepared when the model loads (--speed-slot): "
                             f"its LoRA wraps {touched[0]}, where diffusers gathers the processes' parts of the "
                             "sequence back")


def check_side_adapter(transformer: torch.nn.Module, name: str, targets: list[str]) -> None:
    """An adapter loaded beside its slot must not wrap a gathered module (see ``check_slots``)."""
    touched = [m for m in gathered_modules(transformer) if m in targets]
    if touched:
        raise InputError(f"adapter {name!r} does not fit its slot and would load beside it, wrapping {touched[0]}, "
                         "where diffusers gathers the processes' parts of the sequence back; with --parallel use "
                         "adapters that fit their slot")


def start(spec: ModelSpec) -> World:
    """Join the processes torchrun started (the process group: nccl between GPUs, gloo between CPUs).

    For a spec ``check_spec`` has passed with a degree above 1.
    """
    import torch.distributed as dist

    device = device_for(spec)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return World(spec.parallel, dist.get_world_size(), str(dist.get_backend()), dist.get_rank(), device)


def enable(pipe: Any, state: slots.SlotState, spec: ModelSpec, world: World) -> None:
    """Split the transformer's sequence over ``world`` with diffusers' context parallelism."""
    from diffusers import ContextParallelConfig

    if spec.speed_slot:
        # Before the gather hook goes on the output head, so that it wraps the LoRA-wrapped head (check_slots).
        slots.prepare(pipe, state, slots.DEFAULT_SLOTS + ("speed",))
    degree = {"ulysses_degree" if world.mode == "ulysses" else "ring_degree": world.degree}
    try:
        with _one_device_without_accelerator():
            for transformer in experts.experts(pipe).values():  # Wan2.2's two experts each take the split
                transformer.enable_parallelism(config=ContextParallelConfig(**degree))
    except ValueError as err:  # diffusers: this attention backend has no context-parallel form
        raise InputError(f"--parallel {world.mode}: {str(err).splitlines()[0]}") from err
    # diffusers gathers through a torch call that torch has deprecated: the warning is theirs to act on, and
    # every process would print it.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"diffusers\.hooks\.context_parallel")


def stop() -> None:
    """Leave the process group (each process, at the end of its command)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def _one_device_without_accelerator() -> Iterator[None]:
    """diffusers 0.42.1 (``ModelMixin._resolve_parallel_config``) takes each process's device index as ``rank %
    torch.accelerator.device_count()``, which divides by zero on a machine without an accelerator. The index is
    only stored (nothing reads it back, and the mesh it builds is a CPU one there), so count one device while
    the call runs; with an accelerator, nothing changes."""
    if torch.accelerator.device_count() > 0:
        yield
        return
    with mock.patch.object(torch.accelerator, "device_count", return_value=1):
        yield
