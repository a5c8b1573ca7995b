"""What a library adapter's sidecar (``NAME.json``) says, and which weights files belong to it.

A single-file adapter is ``loras/<kind>/NAME.safetensors``. A Wan2.2 pair is one adapter with two parts,
``NAME@high_noise.safetensors`` and ``NAME@low_noise.safetensors`` (``@`` is not allowed in names, so no
other adapter's file can clash with a part's), each with its own sha256 in the sidecar's ``parts``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .expert_placement import PartFile, default_placement, placement_field
from .names import check_plain_name
from .slots import SLOTS, SlotSpec, fits_slot

KINDS = tuple(SLOTS)
PART_SEPARATOR = "@"


def check_name(name: str) -> str:
    """Refuse names that could escape the library folder or clash with files the app uses."""
    if not name:
        raise InputError("an adapter needs a name")
    return check_plain_name(name, "adapter")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"unknown adapter kind {kind!r}: choose {' or '.join(KINDS)}")
    return kind


def part_filename(name: str, expert: str) -> str:
    """The file of a pair's half in the library."""
    return f"{name}{PART_SEPARATOR}{expert}.safetensors"


def pair_digest(part_hashes: dict[str, str]) -> str:
    """One sha256 that names a pair: over its halves' sha256s, by expert (records and slots compare it)."""
    text = "".join(f"{expert}:{sha}\n" for expert, sha in sorted(part_hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class AdapterInfo:
    """One library entry: the sidecar's content plus where the files are.

    For a pair, ``sha256`` is :func:`pair_digest` of its parts, ``size_bytes`` their sum, ``rank`` the larger and
    ``target_modules`` the union of theirs; ``parts`` has each half's own file, sha256, size, rank and targets.
    """

    name: str
    kind: str
    rank: int
    alpha: float
    target_modules: list[str]
    blocks: int
    base_model: str
    base_fingerprint: dict[str, int]
    default_strength: float
    sha256: str
    size_bytes: int
    created: str
    description: str = ""
    source_format: str = "diffusers"
    source_file: str = ""
    hotswap: bool = True
    hotswap_note: str = ""
    import_notes: list[str] = field(default_factory=list)  # what the import did beyond renaming keys
    dropped_full_deltas: list[str] = field(default_factory=list)  # left out on request, by original key
    trained_on: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    placement: str = placement_field()  # sidecars written before pairs: "" (the kind's default)
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)  # a pair's halves, by expert
    path: Path = field(default=Path(), compare=False)  # the weights file; for a pair, where its name starts

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> AdapterInfo:
        known = {f.name for f in dataclasses.fields(cls)} - {"path"}
        info = cls(**{k: v for k, v in data.items() if k in known}, path=path)
        if not info.placement:
            info.placement = default_placement(info.kind, info.is_pair)
        if info.kind in SLOTS:
            # Whether an adapter fits its slot is the slots' current rule, not the one of its import
            # day: adapters imported when slots refused biases hot-swap now.
            spec = SLOTS[info.kind]
            info.hotswap, info.hotswap_note = fits_slot(module_names(info.target_modules, spec), info.rank, spec)
        return info

    @property
    def is_pair(self) -> bool:
        return bool(self.parts)

    def files(self) -> list[PartFile]:
        """The weights files: a pair's halves in denoising order, or the one file."""
        if not self.is_pair:
            return [PartFile(None, self.path, self.sha256, self.size_bytes)]
        return [PartFile(expert, self.path.parent / part["file"], part["sha256"], int(part["size_bytes"]))
                for expert, part in sorted(self.parts.items())]  # "high_noise" < "low_noise"

    def label(self) -> str:
        label = f"{self.name} (pair)" if self.is_pair else self.name
        return label if self.hotswap else f"{label} (slow load)"


def module_names(targets: list[str], spec: SlotSpec) -> list[str]:
    """Module names standing for a sidecar's targets, which record block layers without their ``blocks.N.``."""
    return [f"blocks.0.{target}" if spec.matches(f"blocks.0.{target}") else target for target in targets]
