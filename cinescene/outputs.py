"""Where generated files go: one fresh, unguessable folder per request."""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from pathlib import Path

DEFAULT_OUTPUTS = Path(os.environ.get("CINESCENE_OUTPUTS", "outputs"))


def new_request_dir(root: str | os.PathLike[str] = DEFAULT_OUTPUTS, kind: str = "sample") -> Path:
    """Create ``root/<kind>-<UTC time>-<random>``; two requests never share a folder."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = Path(root) / f"{kind}-{stamp}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder
