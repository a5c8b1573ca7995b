from __future__ import annotations

import os
import time

from cinescene import outputs


def make(root, name, size, age_hours):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "video.mp4").write_bytes(b"x" * size)
    old = time.time() - age_hours * 3600
    os.utime(folder, (old, old))
    return folder


def test_request_folders_are_unique(tmp_path):
    a, b = outputs.new_request_dir(tmp_path), outputs.new_request_dir(tmp_path)
    assert a != b and a.parent == b.parent == tmp_path


def test_cleanup_by_age_then_by_size_and_only_our_folders(tmp_path):
    old = make(tmp_path, "sample-20260101-000000-aaaaaaaa", 10, age_hours=30)
    mid = make(tmp_path, "sample-20260102-000000-bbbbbbbb", 600, age_hours=3)
    new = make(tmp_path, "compare-20260103-000000-cccccccc", 600, age_hours=1)
    foreign = make(tmp_path, "my-precious-renders", 10_000, age_hours=1000)
    removed = outputs.cleanup(tmp_path, max_age_hours=24, max_bytes=1000)
    assert removed == [old, mid]  # too old, then the oldest until 600 bytes fit under 1000
    assert new.exists() and foreign.exists()


def test_janitor_runs_in_the_background(tmp_path):
    make(tmp_path, "sample-20260101-000000-dddddddd", 10, age_hours=50)
    janitor = outputs.Janitor(tmp_path, max_age_hours=1, max_bytes=10**9, interval=0.05).start()
    deadline = time.time() + 5
    while any(tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    janitor.stop()
    assert not any(tmp_path.iterdir())


def test_cleanup_trims_a_reviewed_folder_to_its_records(tmp_path):
    reviewed = make(tmp_path, "compare-20260101-000000-eeeeeeee", 5000, age_hours=30)
    (reviewed / "metrics.json").write_text("{}")
    (reviewed / "reviews.jsonl").write_text("{}\n")
    (reviewed / "cells").mkdir()
    (reviewed / "cells" / "a.mp4").write_bytes(b"x" * 500)
    old = time.time() - 30 * 3600
    os.utime(reviewed, (old, old))
    unreviewed = make(tmp_path, "compare-20260102-000000-ffffffff", 10, age_hours=30)
    big = make(tmp_path, "sample-20260103-000000-abababab", 900, age_hours=1)
    removed = outputs.cleanup(tmp_path, max_age_hours=24, max_bytes=1000)
    assert removed == [unreviewed]  # the reviewed one freed 5500 bytes by trimming, so the new one fits
    assert sorted(p.name for p in reviewed.iterdir()) == ["metrics.json", "reviews.jsonl"]
    assert big.exists()
    assert outputs.cleanup(tmp_path, max_age_hours=24, max_bytes=1000) == []  # nothing left to trim
    assert sorted(p.name for p in reviewed.iterdir()) == ["metrics.json", "reviews.jsonl"]
