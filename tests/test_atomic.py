from __future__ import annotations

import pytest

from cinescene import atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dest = tmp_path / "record.json"
    atomic.write_json(dest, {"v": 1})
    with pytest.raises(RuntimeError), atomic.atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert dest.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


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
