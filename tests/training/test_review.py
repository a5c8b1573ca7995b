"""Checkpoint review and promotion on tiny runs the tests train."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cinescene import loading, media, sampler
from cinescene.adapters import AdapterLibrary
from cinescene.cli import main
from cinescene.errors import InputError
from cinescene.evaluate import EvalItem
from cinescene.settings import AdapterChoice, ModelSpec, SampleSettings
from cinescene.training import config as train_config
from cinescene.training import review
from cinescene.training.trainer import Trainer

from footage import make_dataset

TEMPLATE = SampleSettings(prompt="", steps=2, frames=5, height=32, width=48, preset="preview", seed=4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 4-step style run, checkpointed at steps 2 and 4, no early stopping: its published adapter is step 4."""
    root = tmp_path_factory.mktemp("review")
    data = make_dataset(root / "data", clips=1, stills=2, frames=12)
    config = train_config.build(model="tiny", data=str(data), stage="style", name="look", steps=4, window=9,
                                area=48 * 64, grad_accum=1, learning_rate=5e-2, val_fraction=0, early_stopping=False,
                                checkpoint_every=2, keep_checkpoints=5, runs_dir=str(root / "runs"),
                                loras_dir=str(root / "loras"), cache_dir=str(root / "cache"))
    Trainer(config).run()
    return root


def test_checkpoints_are_listed_and_each_renders_as_its_own_weights(trained, tiny_model, still, tmp_path):
    run_dir = trained / "runs" / "look"
    found = review.list_checkpoints(run_dir)
    assert [(c.stage, c.step) for c in found] == [("style", 2), ("style", 4)]
    shots = [EvalItem(still, "a lighthouse", seed=1), EvalItem(still, "a harbour")]
    events = []
    record = review.review(tiny_model, run_dir, shots, TEMPLATE, tmp_path / "out", AdapterLibrary(trained / "loras"),
                           on_event=lambda e: events.append(e["done"]))
    assert events[-1] == 6 and [c["row"] for c in record["cells"]] == ["base"] * 2 + ["style step 2"] * 2 + [
        "style step 4"] * 2
    out = tmp_path / "out"

    def cell(row: int, shot: int) -> np.ndarray:
        return media.read_video(out / "videos" / f"row{row}" / f"shot{shot}.mp4").frames

    def plain(*adapters: AdapterChoice, seed: int) -> np.ndarray:
        frames = sampler.sample(loading.load_model(ModelSpec(model="tiny")), media.load_image(still),
                                SampleSettings(**{**TEMPLATE.to_dict(), "prompt": "a lighthouse", "seed": seed,
                                                  "adapters": adapters}),
                                library=AdapterLibrary(trained / "loras")).frames
        return media.read_video(media.write_video(frames, tmp_path / f"plain{len(adapters)}.mp4")).frames

    # The last checkpoint is the run's published adapter (no early stopping), converted by the trainer itself.
    assert np.array_equal(cell(2, 0), plain(AdapterChoice("style", "look"), seed=1))
    assert np.array_equal(cell(0, 0), plain(seed=1))  # the base row is the plain model
    assert not np.array_equal(cell(1, 0), cell(2, 0))  # step 2 is not step 4
    assert (out / "grid.png").is_file() and media.read_video(out / "grid.mp4").frames.shape[0] == 5
    assert not (out / "adapters").exists()  # the scratch library is gone; the library itself is untouched
    assert AdapterLibrary(trained / "loras").names("style") == ["look"]
    assert json.loads((out / "review.json").read_text())["checkpoints"] == ["style step 2", "style step 4"]


def test_promote_lands_in_the_library_naming_run_and_step(trained, tiny_model, tmp_path):
    run_dir = trained / "runs" / "look"
    lib = AdapterLibrary(tmp_path / "loras")
    info = review.promote(run_dir, review.find_checkpoint(run_dir, 2), lib, tiny_model)
    assert (info.name, info.kind, info.rank, info.alpha) == ("look-style-2", "style", 8, 16.0)
    assert info.extra["run"] == "look" and info.extra["step"] == 2 and "step 2 of run look" in info.description
    with pytest.raises(InputError, match="already exists"):
        review.promote(run_dir, review.find_checkpoint(run_dir, 2), lib, tiny_model)
    with pytest.raises(InputError, match=r"no checkpoint at step 3 .*style step 2, style step 4"):
        review.find_checkpoint(run_dir, 3)
    code = main(["promote", str(run_dir), "--step", "4", "--name", "look-final", "--loras", str(lib.root)])
    assert code == 0 and lib.get("look-final").extra["step"] == 4


def test_review_of_something_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "set.jsonl").write_text("")
    assert main(["review", str(tmp_path), "--model", "tiny", "--set", str(tmp_path / "set.jsonl"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "is not a training run" in capsys.readouterr().err


def test_a_two_expert_run_is_refused_by_name(tmp_path):
    run_dir = tmp_path / "runs" / "pair"
    run_dir.mkdir(parents=True)
    config = train_config.build(model="tiny-wan22", data="x", name="pair").to_dict()
    (run_dir / "log.jsonl").write_text(json.dumps({"type": "start", "config": config}) + "\n")
    with pytest.raises(InputError, match="two experts apart"):
        review.list_checkpoints(run_dir)
