"""Adapter slots on a loaded pipeline: prepared once, hot-swapped in place, strengths per slot.

Each slot owns a fixed set of transformer layers and a maximum rank. When a
pipeline first needs adapters, every slot gets a placeholder LoRA of zeros at
its maximum rank over all of its layers, and the scalings become tensors
(diffusers' ``enable_lora_hotswap`` plus peft's ``prepare_model_for_compiled_hotswap``).
From then on, choosing an adapter copies its weights into the slot's existing
LoRA tensors (``load_lora_weights(..., hotswap=True)``): no new modules, no
reload of the base model, and no recompilation of a compiled transformer.

Base weights are never touched: LoRA layers wrap them and add ``scale * B(A(x))``;
with strength 0 that term is exactly zero, so the output is the base output.

Slots carry LoRA biases (peft's ``lora_bias``: ``lora_B`` has a bias), because
LoRAs made by diffing checkpoints (the lightx2v and CausVid speed LoRAs) carry
bias deltas (``diff_b``). The bias is part of ``B``'s output, so the strength
scales it with the rest: strength s adds ``s * (B A x + bias)``, and 0 adds
nothing. An adapter without biases swaps in with its biases zeroed.

An adapter that does not fit its slot (other layers, higher rank) still
loads, as a separate peft adapter beside the slot: slower to switch, and it
adds modules, which a compiled transformer pays for with a recompile.

Wan2.2 A14B has two experts; every slot exists on both (``transformer`` and
``transformer_2``, loaded through diffusers' ``load_into_transformer_2``), and
an adapter goes into the slot of the experts it acts on (see expert_placement),
each expert getting its own file when the adapter is a pair. On an expert the
adapter does not act on, the slot is at strength 0 whatever it holds.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import experts
from .architecture import EXPERT_COMPONENTS, SINGLE
from .errors import InputError


@dataclass(frozen=True)
class SlotSpec:
    name: str
    pattern: str  # peft target_modules regex over transformer module names (full match)
    max_rank: int
    description: str

    def matches(self, module_name: str) -> bool:
        return re.fullmatch(self.pattern, module_name) is not None


SLOTS: dict[str, SlotSpec] = {
    "style": SlotSpec(
        "style",
        r"blocks\.\d+\.attn2\.(to_q|to_k|to_v|to_out\.0|add_k_proj|add_v_proj)",
        32,
        "the look: cross-attention to the prompt and to the first frame's CLIP embedding",
    ),
    "motion": SlotSpec(
        "motion",
        r"blocks\.\d+\.attn1\.(to_q|to_k|to_v|to_out\.0)",
        32,
        "the movement: self-attention across space and time",
    ),
    # Step-distilled LoRAs (lightx2v, CausVid) are extracted from fully retrained checkpoints: they
    # cover every linear layer of every block, and the embedders and output head as well.
    "speed": SlotSpec(
        "speed",
        r"blocks\.\d+\.(attn1\.(to_q|to_k|to_v|to_out\.0)|attn2\.(to_q|to_k|to_v|to_out\.0|add_k_proj|add_v_proj)"
        r"|ffn\.net\.(0\.proj|2))"
        r"|condition_embedder\.(time_embedder\.linear_[12]|time_proj|text_embedder\.linear_[12]"
        r"|image_embedder\.ff\.net\.(0\.proj|2))|proj_out",
        64,
        "few-step sampling: step-distilled LoRAs over every linear layer",
    ),
}

# What a speed adapter switches the sampler to, unless its sidecar says otherwise
# (extra.sampling): lightx2v's published settings for Wan2.1 I2V.
SPEED_SAMPLING = {"steps": 4, "guidance": 1.0, "shift": 5.0}


@dataclass
class _Loaded:
    name: str
    sha256: str
    adapter_name: str  # the peft adapter that holds it: the slot itself, or a side adapter
    hotswapped: bool
    experts: tuple[str, ...] = (SINGLE,)  # the experts it acts on; on the others its slot is at strength 0


@dataclass
class SlotState:
    """Which adapter sits in which slot of one pipeline. Lives on the LoadedModel."""

    ready: list[str] = field(default_factory=list)  # slots with their placeholders in place
    loaded: dict[str, _Loaded] = field(default_factory=dict)
    # (expert, slot) -> sha256 of the file whose weights that expert's slot tensors hold: a swap to what is already
    # there copies nothing.
    held: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def prepared(self) -> bool:
        return bool(self.ready)

    def describe(self) -> dict[str, Any]:
        return {slot: {"name": x.name, "sha256": x.sha256, "hotswap": x.hotswapped, "experts": list(x.experts)}
                for slot, x in self.loaded.items()}


def slot_modules(transformer: torch.nn.Module, spec: SlotSpec) -> dict[str, torch.nn.Linear]:
    """The base Linear layers a slot targets, by module name."""
    found = {}
    for name, module in transformer.named_modules():
        clean = name.replace(".base_layer", "")
        if isinstance(module, torch.nn.Linear) and spec.matches(clean) and "lora_" not in name:
            found[clean] = module
    if not found:
        raise InputError(f"slot {spec.name!r}: no layer of this transformer matches {spec.pattern}")
    return found


def fits_slot(module_names: list[str], rank: int, spec: SlotSpec) -> tuple[bool, str]:
    """Whether an adapter can be hot-swapped into ``spec``; the reason when it cannot."""
    outside = [m for m in module_names if not spec.matches(m)]
    if outside:
        return False, f"it also targets layers outside the {spec.name} slot (e.g. {outside[0]})"
    if rank > spec.max_rank:
        return False, f"its rank {rank} is above the {spec.name} slot's maximum {spec.max_rank}"
    return True, ""


def _placeholder(transformer: torch.nn.Module, spec: SlotSpec) -> dict[str, torch.Tensor]:
    """Zero LoRA weights and biases over all of a slot's layers at its maximum rank.

    The zero biases make diffusers create the slot with ``lora_bias=True``; hot-swapping
    then copies an adapter's biases, and zeroes them for an adapter without any.
    """
    sd = {}
    for name, linear in slot_modules(transformer, spec).items():
        dtype, device = linear.weight.dtype, linear.weight.device
        zeros = {"dtype": dtype, "device": device}
        sd[f"transformer.{name}.lora_A.weight"] = torch.zeros(spec.max_rank, linear.in_features, **zeros)
        sd[f"transformer.{name}.lora_B.weight"] = torch.zeros(linear.out_features, spec.max_rank, **zeros)
        sd[f"transformer.{name}.lora_B.bias"] = torch.zeros(linear.out_features, **zeros)
    return sd


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    # Several adapters on one model is exactly what slots are; peft warns about it every time.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        yield


DEFAULT_SLOTS = ("style", "motion")


def load_lora(pipe: Any, expert: str, source: Any, **kwargs: Any) -> None:
    """``pipe.load_lora_weights`` into one expert: diffusers' ``load_into_transformer_2`` for the low-noise one."""
    if EXPERT_COMPONENTS[expert] == "transformer_2":
        kwargs["load_into_transformer_2"] = True
    pipe.load_lora_weights(source, **kwargs)


def prepare(pipe: Any, state: SlotState, names: tuple[str, ...] = DEFAULT_SLOTS) -> None:
    """Give the named slots their zero placeholders and tensor scalings on every expert (once each; best before
    compiling).

    The speed slot is prepared only when asked for: its placeholder covers every
    linear layer of every block, which costs memory a crew without a speed LoRA
    should not pay.
    """
    todo = [name for name in names if name not in state.ready]
    if not todo:
        return
    from peft.utils.hotswap import prepare_model_for_compiled_hotswap

    modules = experts.experts(pipe)
    if not state.ready:
        if any(getattr(module, "peft_config", None) for module in modules.values()):
            raise InputError("the transformer already carries LoRA adapters loaded outside cinescene's slots")
        pipe.enable_lora_hotswap(target_rank=max(SLOTS[name].max_rank for name in todo))  # on every expert
    with quiet_peft():
        for name in todo:
            for expert, module in modules.items():
                load_lora(pipe, expert, _placeholder(module, SLOTS[name]), adapter_name=name)
    for module in modules.values():
        # diffusers prepares only the first adapter loaded after enable_lora_hotswap; the
        # others need tensor scalings too, or changing a strength would recompile a compiled transformer.
        compiled = getattr(module, "_cinescene_compiled", False)
        prepare_model_for_compiled_hotswap(module, check_compiled="warn" if compiled else "ignore")
        lora_to_compute_dtype(module)
    state.ready += todo
    _activate(pipe, state)
    set_strengths(pipe, {name: 0.0 for name in todo})


def lora_to_compute_dtype(transformer: torch.nn.Module) -> None:
    """peft creates LoRA weights in the base layer's dtype; with fp8 storage of the base that would be fp8 too."""
    target = torch.bfloat16 if next(transformer.parameters()).is_cuda else torch.float32
    for name, param in transformer.named_parameters():
        if "lora_" in name and param.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            param.data = param.data.to(target)


def load_into_slot(pipe: Any, state: SlotState, spec: SlotSpec, name: str, sha256: str, path: Path,
                   hotswappable: bool) -> None:
    """Put the adapter file at ``path`` in ``spec``'s slot of every expert, unless it is already there."""
    load_parts(pipe, state, spec, name, sha256, {expert: (sha256, path) for expert in experts.experts(pipe)},
               hotswappable)


def load_parts(pipe: Any, state: SlotState, spec: SlotSpec, name: str, sha256: str,
               files: dict[str, tuple[str, Path]], hotswappable: bool) -> None:
    """Put an adapter in ``spec``'s slot: ``files`` maps each expert it acts on to (sha256, file) of its weights.

    A pair gives each expert its own file; a single file may go to one expert or both. Experts not in ``files``
    keep what their slot holds, at strength 0 for this adapter (see set_strengths).
    """
    modules = experts.experts(pipe)
    unknown = sorted(set(files) - set(modules))
    if unknown or not files:
        raise ValueError(f"no expert named {', '.join(unknown) or '(none given)'} in this pipeline: "
                         f"{', '.join(modules)}")
    current = state.loaded.get(spec.name)
    targets = tuple(expert for expert in modules if expert in files)
    if current is not None and (current.sha256, current.experts, current.hotswapped) == (sha256, targets,
                                                                                          hotswappable):
        return
    if current is not None and not current.hotswapped:
        for module in modules.values():
            if current.adapter_name in (getattr(module, "peft_config", None) or {}):
                module.delete_adapters(current.adapter_name)
    side = f"{spec.name}_side"
    for expert in targets:
        part_sha, path = files[expert]
        if hotswappable:
            if state.held.get((expert, spec.name)) != part_sha:
                load_lora(pipe, expert, str(path), adapter_name=spec.name, hotswap=True)
                state.held[(expert, spec.name)] = part_sha
        else:
            # The slot's own tensors stay but contribute nothing while the side adapter is in use.
            _zero_slot(modules[expert], spec.name)
            state.held.pop((expert, spec.name), None)
            with quiet_peft():
                load_lora(pipe, expert, str(path), adapter_name=side)
            lora_to_compute_dtype(modules[expert])
    state.loaded[spec.name] = _Loaded(name, sha256, spec.name if hotswappable else side, hotswappable, targets)
    _activate(pipe, state)


def empty_slot(pipe: Any, state: SlotState, slot: str) -> None:
    """Take the adapter out of a slot on every expert: zero its tensors (or drop its side adapter)."""
    current = state.loaded.pop(slot, None)
    if current is None:
        return
    for expert, module in experts.experts(pipe).items():
        if current.hotswapped:
            _zero_slot(module, slot)
            state.held.pop((expert, slot), None)
        elif current.adapter_name in (getattr(module, "peft_config", None) or {}):
            module.delete_adapters(current.adapter_name)
    if not current.hotswapped:
        _activate(pipe, state)


def _activate(pipe: Any, state: SlotState) -> None:
    """Make every slot and side adapter an expert holds active on it (peft refuses names a model lacks)."""
    names = list(state.ready)
    names += [x.adapter_name for x in state.loaded.values() if x.adapter_name not in names]
    for module in experts.experts(pipe).values():
        module.set_adapter([n for n in names if n in (getattr(module, "peft_config", None) or {})])


def _zero_slot(transformer: torch.nn.Module, adapter_name: str) -> None:
    with torch.no_grad():
        for module in _lora_layers(transformer):
            if adapter_name in module.lora_B:
                module.lora_B[adapter_name].weight.zero_()
                if module.lora_B[adapter_name].bias is not None:
                    module.lora_B[adapter_name].bias.zero_()


def _lora_layers(transformer: torch.nn.Module) -> list[Any]:
    from peft.tuners.lora import LoraLayer

    return [m for m in transformer.modules() if isinstance(m, LoraLayer)]


def set_strengths(pipe: Any, strengths: dict[str, float], state: SlotState | None = None) -> None:
    """Set each slot's strength in place on every expert; 0 switches a slot off exactly.

    An adapter acts only on the experts it was loaded for: on the others its
    slot gets strength 0. Scalings are written into their existing tensors rather
    than through ``set_adapters``: that call replaces them with Python floats,
    which a compiled transformer treats as constants (one recompile per new
    value). Every stored adapter has alpha == rank (see lora_formats), so a
    slot's scale is simply its strength.
    """
    for expert, transformer in experts.experts(pipe).items():
        by_adapter = {}
        for slot, strength in strengths.items():
            loaded = state.loaded.get(slot) if state is not None else None
            value = strength if loaded is None or expert in loaded.experts else 0.0
            if loaded is not None and not loaded.hotswapped:
                by_adapter[loaded.adapter_name] = value
                by_adapter[slot] = 0.0
            else:
                by_adapter[slot] = value
        for module in _lora_layers(transformer):
            for adapter, strength in by_adapter.items():
                if adapter not in module.scaling:
                    continue
                value = strength * module.lora_alpha[adapter] / module.r[adapter]
                current = module.scaling[adapter]
                if isinstance(current, torch.Tensor):
                    current.fill_(value)
                else:
                    module.scaling[adapter] = value


def lora_param_count(transformer: torch.nn.Module, adapter_name: str) -> int:
    return sum(p.numel() for n, p in transformer.named_parameters() if f".{adapter_name}." in n and "lora_" in n)
