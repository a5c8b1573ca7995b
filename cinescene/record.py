"""The JSON record written beside every output: enough to reproduce and cite it."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
from typing import Any

from . import __version__

_LIBRARIES = (
    "torch",
    "diffusers",
    "transformers",
    "peft",
    "accelerate",
    "gradio",
    "imageio",
    "imageio-ffmpeg",
    "open_clip_torch",
    "lpips",
    "numpy",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "cinescene": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def build_record(*, kind: str, model: dict[str, Any], settings: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """A record with the common header; ``sections`` add kind-specific parts (output, adapters, timings...)."""
    record: dict[str, Any] = {"kind": kind, "created": now_iso(), "model": model, "settings": settings}
    record.update(sections)
    record["versions"] = library_versions()
    record["machine"] = {"platform": platform.platform(), "processor": platform.machine()}
    return record
