"""Safe extraction of uploaded dataset archives (.zip).

Refused: absolute paths, drive letters, ``..``, links and other special
files, too many entries, too much data, and suspicious compression ratios
(checked on the bytes actually written, not on what the archive claims).
Extraction goes to a temporary folder that is renamed into place only when
everything is in, so a refused archive leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..names import from_filename

MAX_ENTRIES = 2000
MAX_TOTAL_BYTES = 8 * 2**30
MAX_RATIO = 200  # uncompressed / compressed for one entry: beyond it, a bomb


def extract_zip(archive: str | os.PathLike[str], root: str | os.PathLike[str], name: str | None = None,
                max_entries: int = MAX_ENTRIES, max_total: int = MAX_TOTAL_BYTES) -> Path:
    """Extract ``archive`` into ``root/<name>``; returns that folder."""
    archive, root = Path(archive), Path(root)
    target = root / from_filename(name or archive.name, "dataset")
    if target.exists():
        raise InputError(f"a dataset named {target.name!r} already exists; rename the archive or remove it first")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(f"{archive.name} is not a readable zip archive") from err
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        with zf:
            entries = zf.infolist()
            if len(entries) > max_entries:
                raise InputError(f"{archive.name} holds {len(entries)} entries; the limit is {max_entries}")
            total = 0
            for info in entries:
                parts = _check_entry(info)
                if info.is_dir() or _is_noise(parts):
                    continue
                dest = tmp.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, open(dest, "wb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        written += len(chunk)
                        total += len(chunk)
                        if total > max_total:
                            raise InputError(f"{archive.name} unpacks to more than {max_total / 2**30:.0f} GiB")
                        if written > 1 << 20 and written > MAX_RATIO * max(info.compress_size, 1):
                            raise InputError(f"{info.filename}: compression ratio above {MAX_RATIO} (a zip bomb?)")
                        out.write(chunk)
        # A single top-level folder is the dataset itself (the usual way people zip a folder).
        children = list(tmp.iterdir())
        source = children[0] if len(children) == 1 and children[0].is_dir() else tmp
        os.replace(source, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_noise(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and Finder files: in many zips, never part of a dataset."""
    return not parts or parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store"


def _check_entry(info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver stored no Unix file type
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise InputError(f"{name}: links and special files are not allowed in a dataset archive")
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"{name}: absolute paths are not allowed in a dataset archive")
    parts = PurePosixPath(name).parts
    if any(part in ("..", "") for part in parts) or "\x00" in name:
        raise InputError(f"{name}: '..' is not allowed in a dataset archive")
    return tuple(p for p in parts if p != ".")
