"""Training runs started from the app: one subprocess at a time, watched through its JSONL log.

The trainer runs as ``python -m cinescene train --config <run>/train.yaml`` in
its own process group, so the app stays responsive and a Stop is a SIGTERM
(the trainer checkpoints, then exits).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import atomic
from ..errors import InputError
from . import log as train_log
from .config import TrainConfig


@dataclass
class RunStatus:
    name: str
    running: bool
    returncode: int | None
    progress: dict[str, Any]
    events: list[dict[str, Any]]
    output_tail: str


class TrainingRuns:
    """Starts, watches and stops the app's training subprocess."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._config: TrainConfig | None = None

    @property
    def active(self) -> TrainConfig | None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return self._config
            return None

    def start(self, config: TrainConfig) -> Path:
        # The child runs from the project folder: hand it absolute paths as this process sees them.
        for key in ("data", "runs_dir", "loras_dir", "models_dir", "cache_dir"):
            value = getattr(config, key)
            if value:
                setattr(config, key, str(Path(value).resolve()))
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                raise InputError(f"a training run ({self._config.name if self._config else '?'}) is already going; "
                                 "stop it first")
            run_dir = config.run_dir()
            run_dir.mkdir(parents=True, exist_ok=True)
            settings = run_dir / "train.yaml"
            import yaml

            atomic.write_text(settings, yaml.safe_dump({"train": {k: (list(v) if isinstance(v, tuple) else v)
                                                                 for k, v in config.to_dict().items()}}))
            output = open(run_dir / "process.log", "ab")
            env = dict(os.environ)
            # The child is a plain CLI run: quiet progress, everything goes to the JSONL log.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "cinescene", "train", "--config", str(settings), "--quiet"],
                stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                cwd=Path(__file__).resolve().parents[2],
            )
            output.close()
            self._config = config
            return run_dir

    def stop(self) -> bool:
        """Ask the running trainer to checkpoint and exit; False when nothing runs."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                return False
            os.killpg(self._process.pid, signal.SIGTERM)
            return True

    def wait(self, timeout: float | None = None) -> int | None:
        process = self._process
        return None if process is None else process.wait(timeout)

    def status(self, config: TrainConfig | None = None) -> RunStatus | None:
        config = config or self._config
        if config is None:
            return None
        with self._lock:
            process = self._process if self._config is config else None
            running = process is not None and process.poll() is None
            code = None if process is None else process.poll()
        events = train_log.read_log(config.run_dir() / "log.jsonl")
        progress = train_log.progress(events)
        tail = ""
        log = config.run_dir() / "process.log"
        if log.is_file():
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        if code not in (None, 0) and progress["state"] not in ("stopped", "stopped early", "done"):
            last = [line for line in tail.splitlines() if line.startswith("error:")]
            progress["state"] = "failed"
            progress["error"] = last[-1].removeprefix("error: ") if last else f"the trainer exited with {code}"
        return RunStatus(config.name, running, code, progress, events, tail)
