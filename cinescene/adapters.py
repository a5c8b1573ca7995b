"""The adapter library on disk: ``loras/<kind>/NAME.safetensors`` plus a ``NAME.json`` sidecar.

Every write is atomic and every multi-file change rolls back on failure, so a
failed import, rename or removal leaves the library exactly as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import architecture, atomic, lora_formats
from .errors import InputError
from .hashing import sha256_file
from .names import check_plain_name, from_filename
from .record import now_iso
from .slots import SLOTS, SlotSpec, fits_slot

KINDS = tuple(SLOTS)
DEFAULT_LIBRARY = Path(os.environ.get("CINESCENE_LORAS", "loras"))
MAX_DESCRIPTION_CHARS = 2000


def check_name(name: str) -> str:
    """Refuse names that could escape the library folder or clash with files the app uses."""
    if not name:
        raise InputError("an adapter needs a name")
    return check_plain_name(name, "adapter")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"unknown adapter kind {kind!r}: choose {' or '.join(KINDS)}")
    return kind


@dataclass
class AdapterInfo:
    """One library entry: the sidecar's content plus where the files are."""

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
    path: Path = field(default=Path(), compare=False)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> AdapterInfo:
        known = {f.name for f in dataclasses.fields(cls)} - {"path"}
        info = cls(**{k: v for k, v in data.items() if k in known}, path=path)
        if info.kind in SLOTS:
            # Whether an adapter fits its slot is the slots' current rule, not the one of its import
            # day: adapters imported when slots refused biases hot-swap now.
            spec = SLOTS[info.kind]
            info.hotswap, info.hotswap_note = fits_slot(_module_names(info.target_modules, spec), info.rank, spec)
        return info

    def label(self) -> str:
        return self.name if self.hotswap else f"{self.name} (slow load)"


class AdapterLibrary:
    def __init__(self, root: str | os.PathLike[str] = DEFAULT_LIBRARY) -> None:
        self.root = Path(root)
        self._verified: dict[Path, tuple[int, int, str]] = {}

    def folder(self, kind: str) -> Path:
        folder = self.root / check_kind(kind)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- reading -----------------------------------------------------------------------------------------

    def list(self, kind: str | None = None, fingerprint: dict[str, int] | None = None) -> list[AdapterInfo]:
        """Entries with a readable sidecar, sorted by name; optionally only those fitting a model."""
        infos = []
        for k in ([check_kind(kind)] if kind else KINDS):
            folder = self.root / k
            if not folder.is_dir():
                continue
            for sidecar in sorted(folder.glob("*.json")):
                weights = sidecar.with_suffix(".safetensors")
                if sidecar.name.startswith(".") or not weights.is_file():
                    continue
                try:
                    info = AdapterInfo.from_json(json.loads(sidecar.read_text()), weights)
                except (ValueError, TypeError, OSError):
                    continue  # a damaged sidecar hides its entry rather than the whole library
                if fingerprint is None or info.base_fingerprint == fingerprint:
                    infos.append(info)
        return sorted(infos, key=lambda i: (i.kind, i.name.lower()))

    def names(self, kind: str, fingerprint: dict[str, int] | None = None) -> list[str]:
        return [i.name for i in self.list(kind, fingerprint)]

    def find(self, name: str) -> AdapterInfo | None:
        check_name(name)
        for kind in KINDS:
            sidecar = self.root / kind / f"{name}.json"
            if sidecar.is_file() and sidecar.with_suffix(".safetensors").is_file():
                return AdapterInfo.from_json(json.loads(sidecar.read_text()), sidecar.with_suffix(".safetensors"))
        return None

    def get(self, name: str, kind: str | None = None) -> AdapterInfo:
        info = self.find(name)
        if info is None:
            raise InputError(f"no adapter named {name!r} in {self.root} (see: python -m cinescene adapters list)")
        if kind is not None and info.kind != kind:
            raise InputError(f"adapter {name!r} is a {info.kind} adapter, not a {kind} adapter")
        return info

    def verified_path(self, info: AdapterInfo) -> Path:
        """The weights file, after checking it is the one the sidecar describes (hashed once per change)."""
        stat = info.path.stat()
        cached = self._verified.get(info.path)
        if cached and cached[:2] == (stat.st_size, stat.st_mtime_ns) and cached[2] == info.sha256:
            return info.path
        if stat.st_size != info.size_bytes or sha256_file(info.path) != info.sha256:
            raise InputError(f"adapter {info.name!r}: {info.path.name} does not match its sidecar's sha256 "
                             "(changed or damaged since import); import it again")
        self._verified[info.path] = (stat.st_size, stat.st_mtime_ns, info.sha256)
        return info.path

    # -- writing -----------------------------------------------------------------------------------------

    def import_file(self, source: str | os.PathLike[str], kind: str, *, name: str | None = None,
                    base_model: str, transformer: torch.nn.Module, description: str = "",
                    default_strength: float = 1.0, overwrite: bool = False,
                    drop_full_deltas: bool = False) -> AdapterInfo:
        """Convert a LoRA file from any supported layout and add it to the library.

        Full deltas a LoRA cannot hold (norms, modulation) are refused by name unless
        ``drop_full_deltas``; then the sidecar lists them (see lora_original).
        """
        source = Path(source)
        name = check_name(name or from_filename(source.name, "adapter"))
        check_kind(kind)
        state_dict, metadata = lora_formats.read_safetensors(source)
        linears = {n.replace(".base_layer", ""): (m.in_features, m.out_features)
                   for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" not in n}
        converted = lora_formats.convert(state_dict, metadata, drop_full_deltas=drop_full_deltas,
                                         linear_shapes=linears)
        return self.add(converted.state_dict, kind, name=name, base_model=base_model, transformer=transformer,
                        description=description, default_strength=default_strength, overwrite=overwrite,
                        source_format=converted.layout, source_file=source.name,
                        alpha=_source_alpha(state_dict, metadata), import_notes=converted.notes,
                        dropped_full_deltas=converted.dropped)

    def add(self, canonical: dict[str, torch.Tensor], kind: str, *, name: str, base_model: str,
            transformer: torch.nn.Module, description: str = "", default_strength: float = 1.0,
            overwrite: bool = False, source_format: str = "diffusers", source_file: str = "",
            alpha: float | None = None, trained_on: dict[str, Any] | None = None,
            extra: dict[str, Any] | None = None, import_notes: list[str] | None = None,
            dropped_full_deltas: list[str] | None = None) -> AdapterInfo:
        """Store a canonical state dict (see lora_formats) with its sidecar, atomically."""
        from diffusers import WanImageToVideoPipeline

        check_name(name)
        folder = self.folder(kind)
        existing = self.find(name)
        if existing is not None and not (overwrite and existing.kind == kind):
            raise InputError(f"an adapter named {name!r} already exists ({existing.kind}); pick another name"
                             + (" or remove it first" if existing.kind != kind else " or pass overwrite"))
        if not -4.0 <= default_strength <= 4.0:
            raise InputError(f"default strength {default_strength} is outside -4..4")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise InputError(f"the description is {len(description)} characters; the limit is {MAX_DESCRIPTION_CHARS}")
        model_name = f"the base model {base_model!r}"
        lora_formats.check_against(canonical, transformer, model_name)
        summary = lora_formats.summarize(canonical)
        ok, why = fits_slot(summary.module_names, summary.rank, SLOTS[kind])
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=folder))
        try:
            WanImageToVideoPipeline.save_lora_weights(
                tmp, transformer_lora_layers={k.removeprefix("transformer."): v for k, v in canonical.items()},
                weight_name="adapter.safetensors",
            )
            weights = tmp / "adapter.safetensors"
            info = AdapterInfo(
                name=name, kind=kind, rank=summary.rank, alpha=float(alpha if alpha is not None else summary.rank),
                target_modules=summary.targets, blocks=len(summary.blocks), base_model=base_model,
                base_fingerprint=_fingerprint(transformer), default_strength=float(default_strength),
                sha256=sha256_file(weights), size_bytes=weights.stat().st_size, created=now_iso(),
                description=description.strip(), source_format=source_format, source_file=source_file,
                hotswap=ok, hotswap_note=why, import_notes=list(import_notes or []),
                dropped_full_deltas=list(dropped_full_deltas or []), trained_on=trained_on, extra=extra or {},
                path=folder / f"{name}.safetensors",
            )
            atomic.write_json(tmp / "adapter.json", info.to_json())
            _commit({weights: info.path, tmp / "adapter.json": info.path.with_suffix(".json")}, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return info

    def remove(self, name: str) -> AdapterInfo:
        info = self.get(name)
        tmp = Path(tempfile.mkdtemp(prefix=".remove-", dir=info.path.parent))
        try:
            # Move both files out of the library first; deleting can then not leave half an entry.
            _commit({info.path: tmp / "w", info.path.with_suffix(".json"): tmp / "s"}, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return info

    def rename(self, name: str, new_name: str) -> AdapterInfo:
        info = self.get(name)
        check_name(new_name)
        if self.find(new_name) is not None:
            raise InputError(f"an adapter named {new_name!r} already exists")
        renamed = dataclasses.replace(info, name=new_name, path=info.path.with_name(f"{new_name}.safetensors"))
        tmp = Path(tempfile.mkdtemp(prefix=".rename-", dir=info.path.parent))
        try:
            atomic.write_json(tmp / "s.json", renamed.to_json())
            _commit({info.path: renamed.path, tmp / "s.json": renamed.path.with_suffix(".json")}, tmp)
            info.path.with_suffix(".json").unlink()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return renamed

    def export(self, name: str, dest: str | os.PathLike[str], layout: str = "comfyui") -> Path:
        """Write an adapter for other tools: ``comfyui`` (diffusion_model.*, lora_down/up, alpha) or ``diffusers``."""
        info = self.get(name)
        dest = Path(dest)
        if dest.suffix != ".safetensors":
            raise InputError("export to a .safetensors file")
        if not dest.parent.is_dir():
            raise InputError(f"the output folder does not exist: {dest.parent}")
        sd, _ = lora_formats.read_safetensors(self.verified_path(info))
        if layout == "comfyui":
            sd = lora_formats.to_comfyui(sd)
        elif layout != "diffusers":
            raise InputError(f"unknown export layout {layout!r}: comfyui or diffusers")
        from safetensors.torch import save_file

        with atomic.atomic_path(dest) as tmp:
            save_file(sd, str(tmp), metadata={"format": "pt", "cinescene_adapter": info.name, "kind": info.kind})
        return dest


def _commit(moves: dict[Path, Path], scratch: Path) -> None:
    """Apply several renames as one: on any failure, undo the ones done and restore what they replaced."""
    done: list[tuple[Path, Path, Path | None, bool]] = []
    try:
        for index, (src, dst) in enumerate(moves.items()):
            backup = None
            if dst.exists():
                backup = scratch / f"backup-{index}"
                os.replace(dst, backup)
            done.append((src, dst, backup, False))
            os.replace(src, dst)
            done[-1] = (src, dst, backup, True)
    except BaseException:
        for src, dst, backup, moved in reversed(done):
            with contextlib.suppress(OSError):
                if moved:
                    os.replace(dst, src)
                if backup is not None:
                    os.replace(backup, dst)
        raise


def _module_names(targets: list[str], spec: SlotSpec) -> list[str]:
    """Module names standing for a sidecar's targets, which record block layers without their ``blocks.N.``."""
    return [f"blocks.0.{target}" if spec.matches(f"blocks.0.{target}") else target for target in targets]


def _fingerprint(transformer: torch.nn.Module) -> dict[str, int]:
    return architecture.fingerprint(transformer.config)


def _source_alpha(state_dict: dict[str, torch.Tensor], metadata: dict[str, str]) -> float | None:
    """The alpha the author trained with, for the record (the weights already include its effect)."""
    alphas = [float(v.item()) for k, v in state_dict.items() if k.endswith(".alpha") and v.numel() == 1]
    if alphas:
        return max(set(alphas), key=alphas.count)
    raw = (metadata or {}).get("lora_adapter_metadata")
    if raw:
        with contextlib.suppress(ValueError, TypeError):
            return float(json.loads(raw).get("transformer.lora_alpha"))
    return None
