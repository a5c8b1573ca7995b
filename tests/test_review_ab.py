from __future__ import annotations

import json
import sys
import threading

import pytest

from cinescene import atomic, review_ab
from cinescene.errors import InputError

LOOK, PUSH = "1" * 64, "2" * 64


def compare_folder(root, name="compare-20260101-000000-aaaaaaaa", adapters=(("style", "look", LOOK),)):
    """A folder as compare.compare leaves it: two videos and the record (only the parts reviews read)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "base.mp4").write_bytes(b"base frames")
    (folder / "tuned.mp4").write_bytes(b"tuned frames")
    record = {"kind": "compare", "files": {"base": "base.mp4", "tuned": "tuned.mp4"},
              "adapters": [{"slot": slot, "name": name, "strength": 1.0, "end": None, "sha256": sha, "rank": 4}
                           for slot, name, sha in adapters]}
    atomic.write_json(folder / "metrics.json", record)
    return folder


def stored(folder):
    return [json.loads(line) for line in (folder / "reviews.jsonl").read_text().splitlines()]


def test_blind_order_is_random_but_reproducible_by_seed():
    orders = [review_ab.blind_order(seed) for seed in range(400)]
    assert orders == [review_ab.blind_order(seed) for seed in range(400)]
    assert 160 < orders.count("tuned") < 240  # both sides, about half each
    assert orders[:8] != orders[8:16]
    import random

    rng, same = random.Random(7), random.Random(7)
    assert [review_ab.blind_order(rng) for _ in range(20)] == [same.choice(review_ab.SIDES) for _ in range(20)]
    unseeded = {review_ab.blind_order() for _ in range(64)}
    assert unseeded == {"base", "tuned"}


@pytest.mark.parametrize("a_side", ["base", "tuned"])
def test_a_blind_choice_is_stored_as_the_real_side(tmp_path, a_side):
    folder = compare_folder(tmp_path)
    other = "tuned" if a_side == "base" else "base"
    judgement = review_ab.record_blind(folder, a_side, {"look": "A", "motion": "B"}, note=" warmer\nskin ",
                                       reviewer="dp")
    assert judgement.preferred == {"look": a_side, "motion": other}
    review_ab.record_blind(folder, a_side, {"look": "tie", "motion": "A"})
    first, second = stored(folder)
    assert first["preferred"] == {"look": a_side, "motion": other}
    assert first["shown"] == {"A": a_side, "B": other} and first["clicked"] == {"look": "A", "motion": "B"}
    assert first["blind"] is True and first["note"] == "warmer skin" and first["reviewer"] == "dp"
    assert first["compare"] == folder.name and first["adapters"][0]["sha256"] == LOOK
    assert second["preferred"] == {"look": "tie", "motion": a_side}
    assert [r.preferred for r in review_ab.read_reviews(folder / "reviews.jsonl").reviews] == [
        first["preferred"], second["preferred"]]


def test_a_review_that_names_the_side_is_not_blind(tmp_path):
    folder = compare_folder(tmp_path)
    review_ab.record_judgement(folder, {"look": "tuned", "motion": "tie"})
    (line,) = stored(folder)
    assert line["blind"] is False and line["shown"] is None and line["preferred"] == {"look": "tuned", "motion": "tie"}


def test_an_audit_catches_a_choice_that_does_not_follow_from_the_clicks(tmp_path):
    folder = compare_folder(tmp_path)
    review_ab.record_blind(folder, "base", {"look": "A", "motion": "tie"})
    (line,) = stored(folder)
    line["preferred"]["look"] = "tuned"  # A was base: clicking A cannot mean tuned
    (folder / "reviews.jsonl").write_text(json.dumps(line) + "\n{not json\n")
    found = review_ab.read_reviews(folder / "reviews.jsonl")
    assert found.reviews == []
    assert len(found.unreadable) == 2 and "look: 'A' clicked with A = base" in found.unreadable[0]
    assert found.unreadable[1].startswith(f"{folder / 'reviews.jsonl'}:2:")


def rated(folder_root, outcomes, sha=LOOK, name="look"):
    """One blind compare per (look, motion) outcome, each given as the side preferred."""
    for i, (look, motion) in enumerate(outcomes):
        folder = compare_folder(folder_root, f"compare-20260101-0000{i:02d}-{sha[:2]}{i:06x}",
                                adapters=(("style", name, sha), ("motion", "push", PUSH)))
        a_side = review_ab.blind_order(i)
        click = {v: k for k, v in review_ab.shown_as(a_side).items()} | {"tie": "tie"}
        review_ab.record_blind(folder, a_side, {"look": click[look], "motion": click[motion]})


def test_win_rate_and_wilson_interval_on_a_known_set(tmp_path):
    from scipy.stats import binomtest

    outcomes = [("tuned", "base")] * 7 + [("tie", "base")] * 2 + [("base", "tuned")]
    rated(tmp_path, outcomes)
    reviews = review_ab.find_reviews(tmp_path).reviews
    assert len(reviews) == 10
    look = review_ab.win_rate(reviews, LOOK, "look")
    assert (look.wins, look.ties, look.losses, look.reviews, look.blind) == (7, 2, 1, 10, 10)
    assert look.rate == pytest.approx(0.8)  # (7 + 2 / 2) / 10
    wilson = binomtest(8, 10).proportion_ci(0.95, method="wilson")  # 8 of 10, what 7 wins and 2 ties add up to
    assert look.interval == pytest.approx((wilson.low, wilson.high), abs=1e-9)
    assert look.interval == pytest.approx((0.4902, 0.9433), abs=1e-4)  # the textbook Wilson interval for 8/10
    assert look.text() == "80% (95% interval 49% to 94%), 10 reviews"
    motion = review_ab.win_rate(reviews, LOOK, "motion")
    assert (motion.wins, motion.losses, motion.rate) == (1, 9, pytest.approx(0.1))
    odd = review_ab.wilson_interval(3.5, 7)  # half a win: scipy cannot say, the formula must still be sane
    assert odd[0] < 0.5 < odd[1] and odd[1] - 0.5 == pytest.approx(0.5 - odd[0])
    rows = review_ab.win_rate_rows(reviews, [{"name": "look", "slot": "style", "sha256": LOOK}])
    assert rows[0] == ["look (style)", "look", "80%", "49% to 94%", "7 / 2 / 1", 10, 10]
    assert rows[1][:3] == ["look (style)", "motion", "10%"] and rows[1][4] == "1 / 0 / 9"
    nothing = review_ab.win_rate(reviews, "3" * 64, "look")
    assert nothing.reviews == 0 and nothing.rate is None and nothing.text() == "no reviews yet"


def test_win_rate_follows_the_file_not_the_name(tmp_path):
    rated(tmp_path / "a", [("tuned", "tie")] * 3)
    rated(tmp_path / "b", [("base", "tie")] * 2, sha="4" * 64)  # re-trained under the same name
    rated(tmp_path / "c", [("tuned", "tie")], name="look-renamed")  # the first file, renamed
    found = review_ab.find_reviews(tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "nowhere")
    first = review_ab.win_rate(found.reviews, LOOK, "look")
    assert (first.wins, first.losses, first.names) == (4, 0, ("look", "look-renamed"))
    assert review_ab.win_rate(found.reviews, "4" * 64, "look").losses == 2
    assert review_ab.win_rate(found.reviews, PUSH, "look").reviews == 6  # beside both: every review counts
    with pytest.raises(InputError, match="2 different files named 'look'"):
        review_ab.adapter_sha256("look", found.reviews)
    assert review_ab.adapter_sha256("look-renamed", found.reviews) == LOOK
    assert review_ab.adapter_sha256("look", found.reviews, library_sha="5" * 64) == "5" * 64
    assert review_ab.adapter_sha256("4" * 64, []) == "4" * 64
    with pytest.raises(InputError, match="no adapter named 'gone'"):
        review_ab.adapter_sha256("gone", found.reviews)


def test_blind_only_leaves_out_reviews_that_named_the_side(tmp_path):
    folder = compare_folder(tmp_path)
    review_ab.record_judgement(folder, {"look": "tuned", "motion": "tuned"})
    review_ab.record_blind(folder, "tuned", {"look": "B", "motion": "B"})
    reviews = review_ab.find_reviews(tmp_path).reviews
    assert review_ab.win_rate(reviews, LOOK, "look").rate == 0.5
    only = review_ab.win_rate(reviews, LOOK, "look", blind_only=True)
    assert (only.reviews, only.losses, only.blind) == (1, 1, 1)


BAD = [
    (lambda f: review_ab.record_blind(f, "tuned", {"look": "C", "motion": "A"}), "look: 'C' is not one of A, B, tie"),
    (lambda f: review_ab.record_blind(f, "tuned", {"look": "A"}), "no choice for the better motion"),
    (lambda f: review_ab.record_blind(f, "tuned", {"look": "A", "motion": None}), "no choice for the better motion"),
    (lambda f: review_ab.record_blind(f, "left", {"look": "A", "motion": "A"}), "must be base or tuned"),
    (lambda f: review_ab.record_blind(f, "base", {"look": "A", "motion": "A", "sound": "A"}), "no question named sound"),
    (lambda f: review_ab.record_judgement(f, {"look": "A", "motion": "tie"}), "look: 'A' is not one of tuned, base"),
    (lambda f: review_ab.record_judgement(f, {"look": "tuned", "motion": "tie"}, note="x" * 2001),
     "note is 2001 characters"),
    (lambda f: review_ab.record_judgement(f / "nope", {"look": "tuned", "motion": "tie"}), "no compare folder"),
    (lambda f: review_ab.record_judgement(f.parent, {"look": "tuned", "motion": "tie"}), "holds no compare record"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_a_one_line_error_and_writes_nothing(tmp_path, call, message):
    folder = compare_folder(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        call(folder)
    assert "\n" not in str(info.value)
    assert not (folder / "reviews.jsonl").exists() and not (tmp_path / "reviews.jsonl").exists()


def test_only_a_compare_record_takes_reviews(tmp_path):
    folder = tmp_path / "sample-20260101-000000-aaaaaaaa"
    folder.mkdir()
    atomic.write_json(folder / "metrics.json", {"kind": "sample", "adapters": [{"name": "look", "sha256": LOOK}]})
    with pytest.raises(InputError, match="is not a compare record"):
        review_ab.record_judgement(folder, {"look": "tuned", "motion": "tie"})
    atomic.write_json(folder / "metrics.json", {"kind": "compare", "adapters": [{"name": "look"}]})
    with pytest.raises(InputError, match="an adapter of the tuned side has no sha256"):
        review_ab.record_judgement(folder, {"look": "tuned", "motion": "tie"})
    (folder / "metrics.json").write_text("{half")
    with pytest.raises(InputError, match="not readable JSON"):
        review_ab.record_judgement(folder, {"look": "tuned", "motion": "tie"})


# Runs in a child process: the file-size limit applies to the whole process.
FULL_DISK = r"""
import resource, signal, sys
from cinescene import review_ab
# Past the limit a write fails with EFBIG, as on a full disk, instead of the signal killing the process.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    review_ab.record_blind(sys.argv[1], "tuned", {"look": "tie", "motion": "tie"}, note="n" * 1500)
except OSError as err:
    print("write failed:", err.strerror)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as Linux has them")
def test_a_write_that_fails_midway_keeps_the_earlier_reviews(tmp_path):
    import subprocess

    from conftest import subprocess_env

    folder = compare_folder(tmp_path)
    review_ab.record_blind(folder, "base", {"look": "A", "motion": "A"}, note="n" * 1500)
    review_ab.record_blind(folder, "tuned", {"look": "A", "motion": "B"})
    before = (folder / "reviews.jsonl").read_bytes()
    limit = len(before) + 1000  # the third review (1.5 kB of note) passes it halfway through its line
    child = subprocess.run([sys.executable, "-c", FULL_DISK, str(folder), str(limit)], env=subprocess_env(),
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("write failed: File too large"), child.stdout  # it did fail, midway
    assert (folder / "reviews.jsonl").read_bytes() == before
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]
    review_ab.record_blind(folder, "tuned", {"look": "tie", "motion": "tie"})
    assert [r["preferred"]["look"] for r in stored(folder)] == ["base", "tuned", "tie"]


def test_reviews_written_at_once_are_all_kept(tmp_path):
    folder = compare_folder(tmp_path)
    errors = []

    def reviewer(name):
        try:
            for _ in range(5):
                review_ab.record_blind(folder, "tuned", {"look": "A", "motion": "tie"}, reviewer=name)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=reviewer, args=(f"r{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r["reviewer"] for r in stored(folder)) == sorted(f"r{i}" for i in range(6) for _ in range(5))


def test_blind_copies_do_not_name_the_side(tmp_path):
    folder = compare_folder(tmp_path)
    out = tmp_path / "blind-20260101-000000-bbbbbbbb"
    out.mkdir()
    copies = review_ab.blind_copies(folder, "tuned", out)
    assert {label: path.name for label, path in copies.items()} == {"A": "A.mp4", "B": "B.mp4"}
    assert copies["A"].read_bytes() == b"tuned frames" and copies["B"].read_bytes() == b"base frames"
    assert sorted(p.name for p in out.iterdir()) == ["A.mp4", "B.mp4"]
    (folder / "base.mp4").unlink()
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(InputError, match="no longer holds its base video"):
        review_ab.blind_copies(folder, "base", again)


# -- the command line: python -m cinescene review-ab / win-rate -------------------------------------------------


def test_review_ab_and_win_rate_from_the_command_line(tmp_path, capsys):
    from test_cli import run_cli

    from cinescene import cli

    import lora_fixtures as lf

    lib = lf.style_and_motion_library(tmp_path)
    # A compare of the library's "look" (the record's shape from a real compare is the UI tests' business).
    out = compare_folder(tmp_path / "runs", "cmp", adapters=(("style", "look", lib.get("look").sha256),))
    assert cli.main(["review-ab", str(out), "--look", "tuned", "--motion", "tie", "--reviewer", "vfx"]) == 0
    assert "look tuned, motion tie (not blind" in capsys.readouterr().out
    assert cli.main(["review-ab", str(out), "--look", "base", "--motion", "tie"]) == 0
    (line, _) = stored(out)
    assert line["adapters"][0]["sha256"] == lib.get("look").sha256 and line["reviewer"] == "vfx"
    capsys.readouterr()
    assert cli.main(["win-rate", "look", "--in", str(tmp_path / "runs"), "--loras", str(lib.root)]) == 0
    text = capsys.readouterr().out
    assert "look (sha256 " in text and "2 reviews, 0 blind" in text
    assert "look    50% (95% interval" in text and ": tuned 1, tie 0, base 1" in text
    assert "motion  50%" in text
    assert cli.main(["win-rate", lib.get("look").sha256, "--in", str(tmp_path / "runs"), "--json",
                     "--blind-only"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["questions"]["look"]["reviews"] == 0 and data["questions"]["look"]["rate"] is None
    # A choice that is not a side, and a folder without a compare: one line, exit 2, nothing written.
    assert run_cli(["review-ab", str(out), "--look", "A", "--motion", "tie"]) == 2
    assert "invalid choice: 'A'" in capsys.readouterr().err
    assert run_cli(["review-ab", str(tmp_path), "--look", "tuned", "--motion", "tie"]) == 2
    err = capsys.readouterr().err
    assert "holds no compare record" in err and len(err.strip().splitlines()) == 1
    assert len(stored(out)) == 2
