"""The trainer on Wan2.2: each of A14B's experts on its own timesteps, one adapter per expert; TI2V-5B."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cinescene import loading, media, sampler
from cinescene.adapters import AdapterLibrary
from cinescene.errors import InputError
from cinescene.settings import TINY_TI2V, TINY_WAN22, AdapterChoice, ModelSpec, SampleSettings
from cinescene.training import config as train_config
from cinescene.training.log import read_log
from cinescene.training.trainer import Trainer

from footage import make_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    data = make_dataset(tmp_path_factory.mktemp("wan22") / "data", clips=1, stills=1, frames=12)
    make_dataset(data / "validation", clips=1, stills=0, frames=12)
    return data


def config(tmp_path, data, **changes):
    values = dict(model=TINY_WAN22, data=str(data), stage="style", name="t", steps=2, window=9, area=48 * 64,
                  grad_accum=1, val_steps=2, val_every=100, val_items=1, val_seeds=1, checkpoint_every=100,
                  runs_dir=str(tmp_path / "runs"), loras_dir=str(tmp_path / "loras"),
                  models_dir=str(tmp_path / "models"), cache_dir=str(tmp_path.parent / "wan22-cache"))
    values.update(changes)
    return train_config.build(**values)


def test_each_expert_trains_only_on_its_timesteps(tmp_path):
    """The high-noise expert sees t >= 900 and the low-noise one t < 900, and only its own LoRA learns."""
    calls, handles, trainable = [], [], {}
    trainer_ref = []

    def on_event(event):
        if event["type"] == "stage_start" and not handles:
            pipe = trainer_ref[0].model.pipe
            for name, module in (("high_noise", pipe.transformer), ("low_noise", pipe.transformer_2)):
                handles.append(module.register_forward_pre_hook(
                    lambda m, _a, kw, name=name: calls.append((name, m.training, kw["timestep"].max().item())),
                    with_kwargs=True))
        if event["type"] == "stage_start":
            pipe = trainer_ref[0].model.pipe
            trainable[event["expert"]] = {
                name: [n for n, p in module.named_parameters() if p.requires_grad]
                for name, module in (("high_noise", pipe.transformer), ("low_noise", pipe.transformer_2))}

    # No held-out items, so no validation samples: every forward call is a training step's.
    data = make_dataset(tmp_path / "data", clips=1, stills=1, frames=12)
    trainer = Trainer(config(tmp_path, data, steps=8, val_fraction=0, learning_rate=1e-2), on_event=on_event)
    trainer_ref.append(trainer)
    try:
        result = trainer.run()
    finally:
        for handle in handles:
            handle.remove()
    assert [(s.stage, s.expert, s.output) for s in result.stages] == [
        ("style", "high_noise", "t.high_noise"), ("style", "low_noise", "t.low_noise")]
    high = [t for name, training, t in calls if name == "high_noise"]
    low = [t for name, training, t in calls if name == "low_noise"]
    assert len(high) == len(low) == 8 and all(training for _, training, _ in calls)
    assert min(high) >= 900 and max(low) < 900
    for expert, other in (("high_noise", "low_noise"), ("low_noise", "high_noise")):
        assert trainable[expert][expert] and all(".lora_" in n and ".style." in n for n in trainable[expert][expert])
        assert trainable[expert][other] == []  # the other expert, and its LoRA, stay frozen
    starts = [e for e in read_log(tmp_path / "runs" / "t" / "log.jsonl") if e["type"] == "stage_start"]
    assert [(e["expert"], e["timesteps"]) for e in starts] == [("high_noise", [900.0, 1000.0]),
                                                              ("low_noise", [0.0, 900.0])]


def test_a_two_stage_run_publishes_one_adapter_per_expert(tmp_path, dataset, still):
    result = Trainer(config(tmp_path, dataset, stage="both", val_every=2, learning_rate=5e-2,
                            motion_under_style=True)).run()
    assert [s.output for s in result.stages] == ["t-style.high_noise", "t-style.low_noise", "t-motion.high_noise",
                                                 "t-motion.low_noise"]
    assert all(s.stopped == "finished" and s.best_step == 2 for s in result.stages)  # each validated
    library = AdapterLibrary(tmp_path / "loras")
    for kind in ("style", "motion"):
        for expert, timesteps in (("high_noise", [900.0, 1000.0]), ("low_noise", [0.0, 900.0])):
            info = library.get(f"t-{kind}.{expert}", kind=kind)
            assert info.extra["expert"] == expert and info.extra["timesteps"] == timesteps
            assert info.extra["boundary_ratio"] == 0.9 and info.base_model == TINY_WAN22
            if kind == "motion":  # trained against its own expert's style
                assert info.extra["frozen_style"] == f"t-style.{expert}"
    for name in ("style/high_noise", "motion/low_noise"):
        assert (tmp_path / "runs" / "t" / name / "finished.json").is_file()
    # The files are plain diffusers LoRAs: one per expert, loaded as diffusers loads Wan2.2 LoRAs.
    image = media.load_image(still)
    shot = SampleSettings(prompt="a red blob", steps=4, frames=5, height=32, width=48, preset="preview")
    base = sampler.sample(loading.load_model(ModelSpec(model=TINY_WAN22)), image, shot).frames
    tuned = loading.load_model(ModelSpec(model=TINY_WAN22))
    tuned.pipe.load_lora_weights(str(library.get("t-style.high_noise").path))
    high_only = sampler.sample(tuned, image, shot).frames
    tuned.pipe.load_lora_weights(str(library.get("t-style.low_noise").path), load_into_transformer_2=True)
    both = sampler.sample(tuned, image, shot).frames
    assert not np.array_equal(base, high_only) and not np.array_equal(high_only, both)
    # Each stage is also the pair NAME, which a slot takes: sampled through the style slot, it is what diffusers
    # gives with the two files loaded on their experts.
    pair = library.get("t-style", kind="style")
    assert pair.is_pair and pair.placement == "both" and pair.extra["halves"] == {
        "high_noise": "t-style.high_noise", "low_noise": "t-style.low_noise"}
    assert {e: part["sha256"] for e, part in pair.parts.items()} == {
        e: library.get(f"t-style.{e}").sha256 for e in ("high_noise", "low_noise")}
    assert library.get("t-motion", kind="motion").is_pair
    slotted = sampler.sample(loading.load_model(ModelSpec(model=TINY_WAN22)), image,
                             dataclasses.replace(shot, adapters=(AdapterChoice("style", "t-style"),)),
                             library=library).frames
    assert np.abs(slotted.astype(int) - both.astype(int)).max() <= 1


def test_one_expert_can_be_trained_alone(tmp_path, dataset):
    result = Trainer(config(tmp_path, dataset, experts="low_noise", steps=1, val_fraction=0)).run()
    assert [(s.expert, s.output) for s in result.stages] == [("low_noise", "t.low_noise")]
    assert AdapterLibrary(tmp_path / "loras").find("t.high_noise") is None


@pytest.mark.parametrize("changes, match", [
    (dict(model="tiny", experts="high_noise"), "is for two-expert models"),
    (dict(method="full"), "full fine-tuning is for one-expert models"),
    (dict(name="n" * 60), "not allowed"),  # n x 60 + ".high_noise" is over the 64 characters of a name
    (dict(stage="motion", style_adapter="absent"), "no adapter named 'absent.high_noise'"),
])
def test_what_cannot_train_is_refused_before_any_work(tmp_path, dataset, changes, match):
    with pytest.raises(InputError, match=match):
        Trainer(config(tmp_path, dataset, **changes)).run()
    assert not (tmp_path / "runs").exists()


def test_ti2v_trains_two_stages_with_its_own_conditioning(tmp_path, dataset, still):
    events = []
    result = Trainer(config(tmp_path, dataset, model=TINY_TI2V, stage="both", val_every=2, area=64 * 64,
                            cache_dir=str(tmp_path / "cache")), on_event=events.append).run()
    assert [(s.stage, s.expert, s.output) for s in result.stages] == [("style", "transformer", "t-style"),
                                                                     ("motion", "transformer", "t-motion")]
    assert any(e["type"] == "note" and "style condition blank" in e["text"] for e in events)
    losses = [e["loss"] for e in events if e["type"] == "step"]
    assert len(losses) == 4 and all(np.isfinite(losses))
    sidecar = json.loads((tmp_path / "loras" / "motion" / "t-motion.json").read_text())
    assert sidecar["extra"]["expert"] == "transformer" and "timesteps" not in sidecar["extra"]
    # One transformer: its adapters go into cinescene's own slots, as Wan2.1's do.
    model, image = loading.load_model(ModelSpec(model=TINY_TI2V)), media.load_image(still)
    shot = SampleSettings(prompt="a red blob", steps=2, frames=5, height=32, width=64, preset="preview")
    base = sampler.sample(model, image, shot).frames
    library = AdapterLibrary(tmp_path / "loras")
    tuned = sampler.sample(model, image, shot.replace(adapters=(AdapterChoice("style", "t-style"),
                                                                AdapterChoice("motion", "t-motion"))), library=library)
    assert tuned.adapters and all(a["hotswap"] for a in tuned.adapters) and not np.array_equal(base, tuned.frames)


def test_a_resumed_run_validates_as_an_uninterrupted_one(tmp_path, dataset):
    """Stopped in the low-noise expert's unit, resumed: the validation shots (which go through both experts)
    score exactly as in a run that never stopped, because the other expert always carries its published files."""
    common = dict(steps=2, val_every=1, learning_rate=5e-2)
    Trainer(config(tmp_path, dataset, name="straight", **common)).run()
    holder = []

    def interrupt(event):
        if event["type"] == "step" and event["expert"] == "low_noise" and event["step"] == 1:
            holder[0].request_stop()

    holder.append(Trainer(config(tmp_path, dataset, name="resumed", **common), on_event=interrupt))
    first = holder[0].run()
    assert [(s.expert, s.stopped) for s in first.stages] == [("high_noise", "finished"), ("low_noise", "interrupted")]
    Trainer(config(tmp_path, dataset, name="resumed", resume=True, **common)).run()

    def scores(name):
        return [(e["step"], e["lpips"]) for e in read_log(tmp_path / "runs" / name / "log.jsonl")
                if e["type"] == "validation" and e["expert"] == "low_noise"]

    straight, resumed = scores("straight"), scores("resumed")
    assert [step for step, _ in straight] == [1, 2] and resumed[-2:] == straight
