"""The training log: one JSON object per line, the single source for the CLI, the UI plot and the report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class TrainLog:
    """Append-only JSONL writer; a no-op on ranks other than 0."""

    def __init__(self, path: str | os.PathLike[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: dict[str, Any]) -> dict[str, Any]:
        event = {"time": round(time.time(), 3), **event}
        if self.enabled:
            # The log is append-only, so it is not rewritten through a temporary file: each event is
            # one write() of one whole line on an O_APPEND descriptor, which a killed process either
            # made or did not. Readers skip a torn last line anyway (power loss).
            line = (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return event


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete event in the log; a torn last line (killed writer) is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def mean_sd(event: dict[str, Any], metric: str) -> str:
    """A validation's mean over its held-out items and seeds, with their spread (older logs: the mean only)."""
    spread = event.get(f"{metric}_std")
    return f"{event[metric]:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")


def progress(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Where a run stands: stage, step of total, last loss, ETA, best validation (means, spreads, the score
    early stopping follows), state."""
    state: dict[str, Any] = {"state": "not started", "stage": None, "step": 0, "total": 0, "loss": None,
                             "eta_seconds": None, "best": None, "validation_video": None, "checkpoint": None,
                             "adapter": None, "error": None}
    step_times: list[float] = []
    for event in events:
        kind = event.get("type")
        if kind == "stage_start":
            state.update(state="training", stage=event.get("stage"), total=event.get("steps", 0),
                         step=event.get("resumed_from", 0))
            step_times = []
        elif kind == "caching":
            state["state"] = "caching"
        elif kind == "step":
            state.update(step=event["step"], loss=event.get("loss"))
            step_times.append(float(event.get("step_time", 0)))
        elif kind == "validation":
            state["validation_video"] = event.get("video")
            if event.get("best"):
                state["best"] = {"step": event["step"], "lpips": event.get("lpips"),
                                 "lpips_std": event.get("lpips_std"), "look": event.get("look"),
                                 "look_std": event.get("look_std"), "val_score": event.get("val_score", "lpips"),
                                 "samples": len(event.get("scores") or [None])}
        elif kind == "checkpoint":
            state["checkpoint"] = event.get("path")
        elif kind in ("stopped", "early_stop", "done", "failed"):
            state["state"] = {"stopped": "stopped", "early_stop": "stopped early", "done": "done",
                              "failed": "failed"}[kind]
            state["error"] = event.get("error")
            state["adapter"] = event.get("adapter") or state["adapter"]
        elif kind == "stage_done":
            state["adapter"] = event.get("adapter")
    if step_times and state["state"] == "training":
        recent = step_times[-20:]
        state["eta_seconds"] = sum(recent) / len(recent) * max(state["total"] - state["step"], 0)
    return state
