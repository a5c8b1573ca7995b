"""The adapter library on disk: ``loras/<kind>/NAME.safetensors`` (or a Wan2.2 pair's two parts) plus ``NAME.json``.

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

from . import architecture, atomic, lora_formats, pair_files
from .adapter_sidecar import KINDS, AdapterInfo, check_kind, check_name, pair_digest, part_filename
from .architecture import HIGH_NOISE, LOW_NOISE
from .errors import InputError
from .expert_placement import PartFile, check_placement, default_placement
from .hashing import sha256_file
from .names import from_filename
from .record import now_iso
from .slots import SLOTS, fits_slot

__all__ = ["DEFAULT_LIBRARY", "KINDS", "MAX_DESCRIPTION_CHARS", "AdapterInfo", "AdapterLibrary", "PartSource",
           "check_kind", "check_name"]

DEFAULT_LIBRARY = Path(os.environ.get("CINESCENE_LORAS", "loras"))
MAX_DESCRIPTION_CHARS = 2000


@dataclass
class PartSource:
    """Where one weights file came from, for the sidecar: its layout, file, alpha, and what import did to it."""

    source_format: str = "diffusers"
    source_file: str = ""
    alpha: float | None = None
    import_notes: list[str] = field(default_factory=list)
    dropped_full_deltas: list[str] = field(default_factory=list)


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
        """Entries with a readable sidecar and all their files, sorted by name; optionally those fitting a model."""
        infos = []
        for k in ([check_kind(kind)] if kind else KINDS):
            folder = self.root / k
            if not folder.is_dir():
                continue
            for sidecar in sorted(folder.glob("*.json")):
                if sidecar.name.startswith("."):
                    continue
                try:
                    info = _entry(sidecar)
                except (ValueError, TypeError, OSError, KeyError):
                    continue  # a damaged sidecar hides its entry rather than the whole library
                if info is not None and (fingerprint is None or info.base_fingerprint == fingerprint):
                    infos.append(info)
        return sorted(infos, key=lambda i: (i.kind, i.name.lower()))

    def names(self, kind: str, fingerprint: dict[str, int] | None = None) -> list[str]:
        return [i.name for i in self.list(kind, fingerprint)]

    def find(self, name: str) -> AdapterInfo | None:
        check_name(name)
        for kind in KINDS:
            sidecar = self.root / kind / f"{name}.json"
            if sidecar.is_file() and (info := _entry(sidecar)) is not None:
                return info
        return None

    def get(self, name: str, kind: str | None = None) -> AdapterInfo:
        info = self.find(name)
        if info is None:
            raise InputError(f"no adapter named {name!r} in {self.root} (see: python -m cinescene adapters list)")
        if kind is not None and info.kind != kind:
            raise InputError(f"adapter {name!r} is a {info.kind} adapter, not a {kind} adapter")
        return info

    def verified_path(self, info: AdapterInfo) -> Path:
        """The weights file of a single-file adapter, after checking it is the one the sidecar describes."""
        if info.is_pair:
            raise InputError(f"adapter {info.name!r} is a Wan2.2 pair (one file per expert); use its parts")
        return self.verified_files(info)[0].path

    def verified_files(self, info: AdapterInfo) -> list[PartFile]:
        """Every weights file of an adapter, each checked against its sha256 in the sidecar (hashed once per change)."""
        for part in info.files():
            stat = part.path.stat()
            cached = self._verified.get(part.path)
            if cached and cached[:2] == (stat.st_size, stat.st_mtime_ns) and cached[2] == part.sha256:
                continue
            if stat.st_size != part.size_bytes or sha256_file(part.path) != part.sha256:
                raise InputError(f"adapter {info.name!r}: {part.path.name} does not match its sidecar's sha256 "
                                 "(changed or damaged since import); import it again")
            self._verified[part.path] = (stat.st_size, stat.st_mtime_ns, part.sha256)
        return info.files()

    # -- writing -----------------------------------------------------------------------------------------

    def import_file(self, source: str | os.PathLike[str], kind: str, *, name: str | None = None,
                    base_model: str, transformer: torch.nn.Module, description: str = "",
                    default_strength: float = 1.0, overwrite: bool = False,
                    drop_full_deltas: bool = False, placement: str | None = None) -> AdapterInfo:
        """Convert a LoRA file from any supported layout and add it to the library.

        Full deltas a LoRA cannot hold (norms, modulation) are refused by name unless
        ``drop_full_deltas``; then the sidecar lists them (see lora_original). Without a
        ``placement``, a file named as one expert's half (``*_high_noise*``) is placed on that expert.
        """
        source = Path(source)
        name = check_name(name or from_filename(source.name, "adapter"))
        check_kind(kind)
        canonical, origin = _convert(source, transformer, drop_full_deltas)
        if placement is None and (marked := pair_files.marked_expert(source)):
            placement = marked
            origin.import_notes.append(f"placed on the {marked.replace('_', '-')} expert: its file name says so")
        return self.add(canonical, kind, name=name, base_model=base_model, transformer=transformer,
                        description=description, default_strength=default_strength, overwrite=overwrite,
                        source_format=origin.source_format, source_file=origin.source_file, alpha=origin.alpha,
                        import_notes=origin.import_notes, dropped_full_deltas=origin.dropped_full_deltas,
                        placement=placement)

    def import_pair(self, high_noise: str | os.PathLike[str], low_noise: str | os.PathLike[str], kind: str, *,
                    name: str | None = None, base_model: str, transformer: torch.nn.Module,
                    transformer_2: torch.nn.Module | None = None, description: str = "",
                    default_strength: float = 1.0, overwrite: bool = False, drop_full_deltas: bool = False,
                    placement: str | None = None) -> AdapterInfo:
        """Convert a published Wan2.2 pair (any supported layout per file) and add it as one adapter.

        ``transformer`` is the high-noise expert (or either: both have the same layers), ``transformer_2`` the
        low-noise one. The name defaults to what the two file names share (see pair_files).
        """
        high, low = Path(high_noise), Path(low_noise)
        pair_files.check_roles(high, low)
        name = check_name(name or pair_files.pair_name(high, low))
        check_kind(kind)
        halves = {HIGH_NOISE: _convert(high, transformer, drop_full_deltas),
                  LOW_NOISE: _convert(low, transformer_2 or transformer, drop_full_deltas)}
        return self.add_pair(kind, name=name, high_noise=halves[HIGH_NOISE][0], low_noise=halves[LOW_NOISE][0],
                             base_model=base_model, transformer=transformer, transformer_2=transformer_2,
                             description=description, default_strength=default_strength, overwrite=overwrite,
                             placement=placement, sources={k: v[1] for k, v in halves.items()})

    def add(self, canonical: dict[str, torch.Tensor], kind: str, *, name: str, base_model: str,
            transformer: torch.nn.Module, description: str = "", default_strength: float = 1.0,
            overwrite: bool = False, source_format: str = "diffusers", source_file: str = "",
            alpha: float | None = None, trained_on: dict[str, Any] | None = None,
            extra: dict[str, Any] | None = None, import_notes: list[str] | None = None,
            dropped_full_deltas: list[str] | None = None, placement: str | None = None) -> AdapterInfo:
        """Store a canonical state dict (see lora_formats) with its sidecar, atomically.

        ``placement`` (Wan2.2: which experts it acts on) defaults to the kind's (see expert_placement).
        """
        origin = PartSource(source_format, source_file, alpha, list(import_notes or []),
                            list(dropped_full_deltas or []))
        return self._store(kind, {None: (canonical, origin, transformer)}, name=name, base_model=base_model,
                           description=description, default_strength=default_strength, overwrite=overwrite,
                           placement=placement, trained_on=trained_on, extra=extra)

    def add_pair(self, kind: str, *, name: str, high_noise: dict[str, torch.Tensor],
                 low_noise: dict[str, torch.Tensor], base_model: str, transformer: torch.nn.Module,
                 transformer_2: torch.nn.Module | None = None, description: str = "", default_strength: float = 1.0,
                 overwrite: bool = False, placement: str | None = None, trained_on: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None, sources: dict[str, PartSource] | None = None) -> AdapterInfo:
        """Store a Wan2.2 pair as one adapter with two parts: canonical state dicts (see lora_formats) for the
        high-noise expert (``transformer``) and the low-noise one (``transformer_2``, default: the same layers).

        One name, one sidecar, each part with its own sha256; written atomically. ``placement`` defaults to
        ``both``: each half acts on its own expert. ``sources`` (by expert) records where each half came from.
        """
        sources = sources or {}
        halves = {HIGH_NOISE: (high_noise, sources.get(HIGH_NOISE) or PartSource(), transformer),
                  LOW_NOISE: (low_noise, sources.get(LOW_NOISE) or PartSource(), transformer_2 or transformer)}
        return self._store(kind, halves, name=name, base_model=base_model, description=description,
                           default_strength=default_strength, overwrite=overwrite, placement=placement,
                           trained_on=trained_on, extra=extra)

    def _store(self, kind: str, halves: dict[str | None, tuple[dict[str, torch.Tensor], PartSource, torch.nn.Module]],
               *, name: str, base_model: str, description: str, default_strength: float, overwrite: bool,
               placement: str | None, trained_on: dict[str, Any] | None, extra: dict[str, Any] | None) -> AdapterInfo:
        """Write one adapter: the single file (key None) or a pair's halves (keys: experts), then the sidecar."""
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
        paired = None not in halves
        placement = check_placement(placement) if placement else default_placement(kind, paired)
        fingerprints = [_fingerprint(module) for _, _, module in halves.values()]
        if any(f != fingerprints[0] for f in fingerprints):
            raise InputError("the two experts given for the pair have different dimensions")
        summaries = {}
        for key, (canonical, _, module) in halves.items():
            where = f"the base model {base_model!r}" + (f" ({key.replace('_', '-')} expert)" if key else "")
            lora_formats.check_against(canonical, module, where)
            summaries[key] = lora_formats.summarize(canonical)
        rank = max(s.rank for s in summaries.values())
        modules = sorted({m for s in summaries.values() for m in s.module_names})
        ok, why = fits_slot(modules, rank, SLOTS[kind])
        origins = [origin for _, origin, _ in halves.values()]
        alpha = next((o.alpha for o in origins if o.alpha is not None), None)
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=folder))
        try:
            moves: dict[Path, Path] = {}
            parts: dict[str, dict[str, Any]] = {}
            for key, (canonical, origin, _) in halves.items():
                weights = tmp / f"{key or 'adapter'}.safetensors"
                WanImageToVideoPipeline.save_lora_weights(
                    tmp, transformer_lora_layers={k.removeprefix("transformer."): v for k, v in canonical.items()},
                    weight_name=weights.name,
                )
                moves[weights] = folder / (part_filename(name, key) if key else f"{name}.safetensors")
                if key:
                    parts[key] = {"file": moves[weights].name, "sha256": sha256_file(weights),
                                  "size_bytes": weights.stat().st_size, "rank": summaries[key].rank,
                                  "target_modules": summaries[key].targets, "blocks": len(summaries[key].blocks),
                                  "source_format": origin.source_format, "source_file": origin.source_file}
            prefix = {key: f"{key}: " if key else "" for key in halves}
            sha = pair_digest({k: p["sha256"] for k, p in parts.items()}) if paired else sha256_file(next(iter(moves)))
            info = AdapterInfo(
                name=name, kind=kind, rank=rank, alpha=float(alpha if alpha is not None else rank),
                target_modules=sorted({t for s in summaries.values() for t in s.targets}),
                blocks=max(len(s.blocks) for s in summaries.values()), base_model=base_model,
                base_fingerprint=fingerprints[0], default_strength=float(default_strength),
                sha256=sha, size_bytes=sum(src.stat().st_size for src in moves), created=now_iso(),
                description=description.strip(),
                source_format=" + ".join(dict.fromkeys(o.source_format for o in origins)),
                source_file=" + ".join(o.source_file for o in origins if o.source_file),
                hotswap=ok, hotswap_note=why,
                import_notes=[prefix[k] + note for k, (_, o, _) in halves.items() for note in o.import_notes],
                dropped_full_deltas=[(f"{k}:" if k else "") + d for k, (_, o, _) in halves.items()
                                     for d in o.dropped_full_deltas],
                trained_on=trained_on, extra=extra or {}, placement=placement, parts=parts,
                path=folder / f"{name}.safetensors",
            )
            atomic.write_json(tmp / "adapter.json", info.to_json())
            moves[tmp / "adapter.json"] = info.path.with_suffix(".json")
            # An overwritten entry's files that the new one does not replace (a single file becoming a pair).
            stale = [part.path for part in existing.files()] if existing is not None else []
            for index, old in enumerate(p for p in stale if p not in moves.values()):
                moves[old] = tmp / f"stale-{index}"
            _commit(moves, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return info

    def remove(self, name: str) -> AdapterInfo:
        info = self.get(name)
        tmp = Path(tempfile.mkdtemp(prefix=".remove-", dir=info.path.parent))
        try:
            # Move every file out of the library first; deleting can then not leave half an entry.
            moves = {part.path: tmp / f"w{index}" for index, part in enumerate(info.files())}
            _commit({**moves, info.path.with_suffix(".json"): tmp / "s"}, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return info

    def rename(self, name: str, new_name: str) -> AdapterInfo:
        info = self.get(name)
        check_name(new_name)
        if self.find(new_name) is not None:
            raise InputError(f"an adapter named {new_name!r} already exists")
        parts = {k: {**p, "file": part_filename(new_name, k)} for k, p in info.parts.items()}
        renamed = dataclasses.replace(info, name=new_name, path=info.path.with_name(f"{new_name}.safetensors"),
                                      parts=parts)
        tmp = Path(tempfile.mkdtemp(prefix=".rename-", dir=info.path.parent))
        try:
            atomic.write_json(tmp / "s.json", renamed.to_json())
            moves = {old.path: new.path for old, new in zip(info.files(), renamed.files())}
            _commit({**moves, tmp / "s.json": renamed.path.with_suffix(".json")}, tmp)
            info.path.with_suffix(".json").unlink()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return renamed

    def set_placement(self, name: str, placement: str) -> AdapterInfo:
        """Change which Wan2.2 experts an adapter acts on (its sidecar only; the weights stay)."""
        info = dataclasses.replace(self.get(name), placement=check_placement(placement))
        atomic.write_json(info.path.with_suffix(".json"), info.to_json())
        return info

    def export(self, name: str, dest: str | os.PathLike[str], layout: str = "comfyui") -> Path:
        """Write an adapter for other tools: ``comfyui`` (diffusion_model.*, lora_down/up, alpha) or ``diffusers``."""
        info = self.get(name)
        if info.is_pair:
            raise InputError(f"adapter {name!r} is a Wan2.2 pair: export it as two files (export_pair)")
        return _write_export(self.verified_path(info), _export_dest(dest), layout, info)

    def export_pair(self, name: str, dest: str | os.PathLike[str], layout: str = "comfyui") -> dict[str, Path]:
        """Write a pair's halves as ``DEST_high_noise.safetensors`` and ``DEST_low_noise.safetensors`` (ComfyUI's
        and ai-toolkit's naming, which import recognises)."""
        info = self.get(name)
        if not info.is_pair:
            raise InputError(f"adapter {name!r} is a single file: export it with export")
        dest = _export_dest(dest)
        return {part.expert: _write_export(part.path, dest.with_name(f"{dest.stem}_{part.expert}.safetensors"),
                                           layout, info)
                for part in self.verified_files(info) if part.expert}


def _entry(sidecar: Path) -> AdapterInfo | None:
    """The entry a sidecar describes, or None when a weights file of it is missing (a damaged sidecar raises)."""
    info = AdapterInfo.from_json(json.loads(sidecar.read_text()), sidecar.with_suffix(".safetensors"))
    return info if all(part.path.is_file() for part in info.files()) else None


def _convert(source: Path, transformer: torch.nn.Module, drop_full_deltas: bool) -> tuple[dict[str, torch.Tensor],
                                                                                           PartSource]:
    converted = lora_formats.convert_file(source, transformer, drop_full_deltas)
    return converted.state_dict, PartSource(converted.layout, source.name, converted.alpha, list(converted.notes),
                                            list(converted.dropped))


def _export_dest(dest: str | os.PathLike[str]) -> Path:
    dest = Path(dest)
    if dest.suffix != ".safetensors":
        raise InputError("export to a .safetensors file")
    if not dest.parent.is_dir():
        raise InputError(f"the output folder does not exist: {dest.parent}")
    return dest


def _write_export(weights: Path, dest: Path, layout: str, info: AdapterInfo) -> Path:
    sd, _ = lora_formats.read_safetensors(weights)
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


def _fingerprint(transformer: torch.nn.Module) -> dict[str, int]:
    return architecture.fingerprint(transformer.config)
