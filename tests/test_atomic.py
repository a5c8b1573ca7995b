from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cinescene import atomic

from conftest import subprocess_env

# Runs in a child process: the file-size limit applies to the whole process.
FULL_DISK = r"""
import resource, signal, sys
from cinescene import atomic
dest, kind = sys.argv[1], sys.argv[2]
# Past the limit a write then fails with EFBIG, as on a full disk, instead of the signal killing the process.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
new = "new " * 5000  # 20 kB: the write fails after its first 4 kB
try:
    atomic.write_json(dest, {"v": new}) if kind == "json" else atomic.write_text(dest, new)
except OSError as err:
    print("write failed:", err.strerror)
"""


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dest = tmp_path / "record.json"
    atomic.write_json(dest, {"v": 1})
    with pytest.raises(RuntimeError), atomic.atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert dest.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as Linux has them")
@pytest.mark.parametrize("kind", ["json", "text"])
def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path, kind):
    dest = tmp_path / ("record.json" if kind == "json" else "notes.md")
    old = json.dumps({"v": 1}) if kind == "json" else "old notes\n"
    dest.write_text(old)
    child = subprocess.run([sys.executable, "-c", FULL_DISK, str(dest), kind], env=subprocess_env(),
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("write failed: File too large"), child.stdout  # it did fail, midway
    assert dest.read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]


def test_replace_dir_swaps_in_the_new_folder_whole(tmp_path):
    old, new = tmp_path / "model", tmp_path / ".model.tmp"
    old.mkdir()
    (old / "weights.safetensors").write_text("old")
    (old / "stale.json").write_text("{}")
    new.mkdir()
    (new / "weights.safetensors").write_text("new")
    atomic.replace_dir(new, old)
    assert {p.name: p.read_text() for p in old.iterdir()} == {"weights.safetensors": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary, no old copy left
