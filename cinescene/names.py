"""Plain names for things users name (adapters, datasets, runs): safe as a single path component."""

from __future__ import annotations

import re
from pathlib import PurePath

from .errors import InputError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RESERVED = {"none", "con", "prn", "aux", "nul"}


def from_filename(filename: str, fallback: str) -> str:
    """A plain name made from an uploaded file's name (its stem, other characters replaced by '-')."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", PurePath(filename).stem).strip("-._")
    return re.sub(r"\.\.+", ".", name)[:64].rstrip(".") or fallback


def check_plain_name(name: str, what: str) -> str:
    """Refuse names that could escape their folder or clash with files the app uses."""
    if not isinstance(name, str) or not name:
        raise InputError(f"{what} needs a name")
    if "/" in name or "\\" in name or ".." in name or "\x00" in name:
        raise InputError(f"{what} name {name!r} contains a path separator or '..'; use letters, digits, - _ .")
    if not _NAME.match(name) or name.lower() in _RESERVED or name.endswith("."):
        raise InputError(
            f"{what} name {name!r} is not allowed: 1 to 64 letters, digits, '-', '_' or '.', starting with a "
            "letter or digit (and not 'none')"
        )
    return name
