"""Failpoints: named places where a fault test may kill the process, as a crash or a SIGKILL would.

``CINESCENE_FAILPOINT=checkpoint_write:2`` kills the process with SIGKILL the
second time it reaches ``failpoint("checkpoint_write")``. Unset (always, outside
tests) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def failpoint(name: str) -> None:
    spec = os.environ.get("CINESCENE_FAILPOINT")
    if not spec:
        return
    target, _, count = spec.partition(":")
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
