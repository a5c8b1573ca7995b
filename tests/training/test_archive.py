from __future__ import annotations

import stat
import zipfile

import pytest

from cinescene.errors import InputError
from cinescene.training import archive

from conftest import files_under


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries:
            if isinstance(content, zipfile.ZipInfo):
                zf.writestr(content, b"target")
            else:
                zf.writestr(name, content)
    return path


def test_folder_zip_is_extracted_and_macos_noise_dropped(tmp_path):
    z = make_zip(tmp_path / "My Set.zip", [("set/a.txt", "caption"), ("set/a.mp4", b"x"),
                                            ("__MACOSX/set/._a.mp4", b"junk"), ("set/.DS_Store", b"junk")])
    folder = archive.extract_zip(z, tmp_path / "datasets")
    assert folder == tmp_path / "datasets" / "My-Set"
    assert sorted(files_under(folder)) == ["a.mp4", "a.txt"]
    with pytest.raises(InputError, match="already exists"):
        archive.extract_zip(z, tmp_path / "datasets")


def _link():
    info = zipfile.ZipInfo("evil_link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("entries, message", [
    ([("/etc/passwd", "x")], "absolute"),
    ([("../escape.txt", "x")], r"'\.\.'"),
    ([("ok/../../escape.txt", "x")], r"'\.\.'"),
    ([("C:\\windows\\x.txt", "x")], "absolute"),
    ([("evil_link", _link())], "links"),
    ([("bomb.bin", b"\0" * (20 * 2**20))], "compression ratio"),
    ([(f"f{i}.txt", "x") for i in range(30)], "entries"),
])
def test_hostile_archives_are_refused_and_leave_nothing(tmp_path, entries, message):
    z = make_zip(tmp_path / "evil.zip", entries)
    root = tmp_path / "datasets"
    with pytest.raises(InputError, match=message):
        archive.extract_zip(z, root, max_entries=20)
    assert not root.exists() or files_under(root) == {} and not any(root.iterdir())
    assert not (tmp_path / "escape.txt").exists()


def test_total_size_limit_counts_real_bytes(tmp_path):
    z = make_zip(tmp_path / "big.zip", [(f"{i}.bin", bytes(range(256)) * 4096) for i in range(4)])
    with pytest.raises(InputError, match="unpacks to more than"):
        archive.extract_zip(z, tmp_path / "datasets", max_total=2 * 2**20)


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"nope")
    with pytest.raises(InputError, match="not a readable zip"):
        archive.extract_zip(tmp_path / "x.zip", tmp_path / "datasets")
