"""One progress protocol for every long task: events are dicts, and the caller decides how to show them.

Every long-running core function takes ``on_event: OnEvent | None``, a callable
that receives one dict per event, with a ``type`` key. Progress is::

    {"type": "progress", "task": "denoising", "done": 3, "total": 40, ...extra}

(``done`` counts from 1 to ``total``; extra keys such as ``timestep`` or
``loss`` ride along). The trainer sends its log events (``step``,
``validation``, ``checkpoint``, ...) through the same callable. The command
line turns progress events into tqdm bars (``cli.common.ProgressBars``), the
app into ``gr.Progress`` (``ui.common.progress_callback``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Event = dict[str, Any]
OnEvent = Callable[[Event], None]


def report(on_event: OnEvent | None, task: str, done: int, total: int, **extra: Any) -> None:
    """Send one progress event (nothing when nobody listens)."""
    if on_event is not None:
        on_event({"type": "progress", "task": task, "done": done, "total": total, **extra})


def as_task(on_event: OnEvent | None, task: str) -> OnEvent | None:
    """The same listener, with every progress event relabelled ``task`` (a sub-task of a bigger job)."""
    if on_event is None:
        return None

    def relabelled(event: Event) -> None:
        on_event({**event, "task": task} if event.get("type") == "progress" else event)

    return relabelled
