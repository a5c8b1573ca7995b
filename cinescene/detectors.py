"""The feature networks of FVD and FID: TorchScript files on this machine, loaded once and kept.

A detector is never downloaded at run time and never unpickled: it is read with
``torch.jit.load`` from a local file (by default in ``~/.cache/cinescene/``, or
where its environment variable or flag points), and a missing file is a
one-line error that says what to download and where to put it. TorchScript
runs the code compiled into the file: use the files the StyleGAN authors
publish, or ones you built yourself.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InputError

CACHE_DIR = Path("~/.cache/cinescene")
REFUSED_SUFFIXES = (".pkl", ".pickle")


@dataclass(frozen=True)
class DetectorFile:
    """Where one detector's file lives and what to tell the user when it is not there."""

    metric: str  # "FVD", "FID"
    network: str  # "I3D", "Inception"
    filename: str
    url: str
    env: str
    flag: str

    def default_path(self) -> Path:
        # Read at call time, not import time: the variable may be set after cinescene is imported.
        return Path(os.environ.get(self.env) or CACHE_DIR / self.filename).expanduser()


_lock = threading.Lock()
_loaded: dict[Path, torch.jit.ScriptModule] = {}


def load(detector: DetectorFile, path: str | os.PathLike[str] | None = None) -> torch.jit.ScriptModule:
    """The detector from ``path`` (or its default location), loaded once per path and kept."""
    path = Path(path).expanduser() if path else detector.default_path()
    where = f"pass its path with {detector.flag} or set {detector.env}"
    if path.suffix.lower() in REFUSED_SUFFIXES:
        raise InputError(f"{path.name} is a pickle, and cinescene never unpickles a detector: {detector.metric} needs "
                         f"the TorchScript {detector.network} file {detector.filename}")
    if not path.is_file():
        raise InputError(f"{detector.metric} needs the {detector.network} file {detector.filename}, not found at "
                         f"{path}: download it ({detector.url}) and put it there, or {where}")
    with _lock:
        if path not in _loaded:
            try:
                with warnings.catch_warnings():
                    # torch marks torch.jit as deprecated, but these detectors exist only as TorchScript.
                    warnings.simplefilter("ignore", FutureWarning)
                    _loaded[path] = torch.jit.load(str(path), map_location="cpu").eval()
            except (RuntimeError, ValueError) as err:
                raise InputError(f"{path.name} is not a TorchScript {detector.network} model "
                                 f"({detector.filename}): {str(err)[:160]}") from err
        return _loaded[path]


def check_features(detector: DetectorFile, feats: torch.Tensor, count: int, dims: int) -> None:
    """The file answered with (count, dims) features, or it is not the network the metric expects."""
    if tuple(feats.shape) != (count, dims):
        raise InputError(f"the {detector.network} model returned features of shape {tuple(feats.shape)}, expected "
                         f"({count}, {dims}): is it {detector.filename}?")
