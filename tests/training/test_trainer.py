"""The trainer on the tiny model with datasets the tests write."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from cinescene import loading, media, sampler, slots
from cinescene.adapters import AdapterLibrary
from cinescene.errors import InputError
from cinescene.settings import ModelSpec, SampleSettings
from cinescene.training import config as train_config
from cinescene.training import held_out
from cinescene.training import trainer as trainer_module
from cinescene.training.dataset import DatasetError
from cinescene.training.log import read_log
from cinescene.training.trainer import Trainer

from conftest import files_under
from footage import make_dataset

CAMERA = {"dx": 0.0, "dy": 0.0, "zoom": 1.0, "label": "static"}  # what a scripted validation sample reports


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    data = make_dataset(tmp_path_factory.mktemp("train") / "data", clips=2, stills=2, frames=12, validation=True)
    make_dataset(data / "validation", clips=1, stills=1, frames=12)  # two held-out items: a clip and a still
    return data


def config(tmp_path, data, **changes):
    values = dict(model="tiny", data=str(data), stage="style", name="t", steps=4, window=9, area=48 * 64,
                  grad_accum=1, val_steps=2, val_every=2, checkpoint_every=100, runs_dir=str(tmp_path / "runs"),
                  loras_dir=str(tmp_path / "loras"), models_dir=str(tmp_path / "models"),
                  cache_dir=str(tmp_path.parent / "shared-cache"))
    values.update(changes)
    return train_config.build(**values)


def run(cfg, events=None, on_event=None):
    def record(event):
        if events is not None:
            events.append(event)
        if on_event:
            on_event(event)

    trainer = Trainer(cfg, on_event=record)
    return trainer, trainer.run()


def test_loss_falls_on_a_repeated_clip(tmp_path):
    data = make_dataset(tmp_path / "one", clips=1, stills=0, frames=9)
    events = []
    run(config(tmp_path, data, stage="motion", steps=30, learning_rate=3e-3, lr_scheduler="constant",
               warmup_ratio=0, val_fraction=0), events)
    losses = [e["loss"] for e in events if e["type"] == "step"]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])


@pytest.mark.parametrize("stage", ["style", "motion"])
def test_only_the_slots_lora_weights_train(tmp_path, dataset, stage):
    seen = {}

    def inspect(event):
        if event["type"] == "stage_start":
            pipe = trainer_ref[0].model.pipe
            seen["trainable"] = [n for n, p in pipe.transformer.named_parameters() if p.requires_grad]
            seen["frozen_elsewhere"] = all(not p.requires_grad for m in (pipe.vae, pipe.text_encoder,
                                                                           pipe.image_encoder)
                                           for p in m.parameters())

    trainer_ref = []
    cfg = config(tmp_path, dataset, stage=stage, steps=1)
    trainer = Trainer(cfg, on_event=inspect)
    trainer_ref.append(trainer)
    trainer.run()
    pattern = slots.SLOTS[stage].pattern
    assert seen["trainable"] and seen["frozen_elsewhere"]
    for name in seen["trainable"]:
        module = re.sub(r"\.lora_[AB]\.\w+\.weight$", "", name).replace(".base_layer", "")
        assert ".lora_" in name and f".{stage}." in name and re.fullmatch(pattern, module), name
    targets = slots.slot_modules(trainer.model.pipe.transformer, slots.SLOTS[stage])
    assert len(seen["trainable"]) == 2 * len(targets)  # an A and a B for every slot layer, nothing else


def test_motion_stage_under_the_style_leaves_the_style_adapter_untouched(tmp_path, dataset):
    snapshot = {}
    trainer_ref = []

    def style_weights():
        return {n: p.detach().clone() for n, p in trainer_ref[0].model.pipe.transformer.named_parameters()
                if ".style." in n}

    def on_event(event):
        if event["type"] == "stage_start" and event["stage"] == "motion":
            snapshot.update(style_weights())

    trainer = Trainer(config(tmp_path, dataset, stage="both", steps=3, learning_rate=1e-2, motion_under_style=True),
                      on_event=on_event)
    trainer_ref.append(trainer)
    result = trainer.run()
    after = style_weights()
    assert snapshot and snapshot.keys() == after.keys()
    assert all(torch.equal(snapshot[k], after[k]) for k in snapshot)
    assert [s.output for s in result.stages] == ["t-style", "t-motion"]
    sidecar = json.loads((tmp_path / "loras" / "motion" / "t-motion.json").read_text())
    assert sidecar["extra"]["frozen_style"] == "t-style"


@pytest.mark.parametrize("under", [False, True])
def test_a_both_run_trains_the_motion_without_the_style_unless_asked(tmp_path, dataset, under):
    """By default the motion stage of a both run sees only its own LoRA (docs/toy.md: under the style it learns
    to undo it); --motion-under-style trains it under the style just published, as --style-adapter does."""
    seen, trainers = {}, []

    def on_event(event):
        if event["type"] == "stage_start" and event["stage"] == "motion":  # after the adapters are set
            seen["active"] = sorted(trainers[0].model.pipe.transformer.active_adapters())

    trainers.append(Trainer(config(tmp_path, dataset, stage="both", steps=2, val_fraction=0,
                                   motion_under_style=under), on_event=on_event))
    trainers[0].run()
    assert seen["active"] == (["motion", "style"] if under else ["motion"])
    sidecar = json.loads((tmp_path / "loras" / "motion" / "t-motion.json").read_text())
    assert sidecar["extra"]["frozen_style"] == ("t-style" if under else None)


def test_saved_adapter_loads_with_plain_diffusers_and_changes_the_output(tmp_path, dataset, still):
    run(config(tmp_path, dataset, steps=4, learning_rate=5e-2, val_fraction=0))
    path = tmp_path / "loras" / "style" / "t.safetensors"
    image = media.load_image(still)
    settings = SampleSettings(prompt="a red blob", steps=2, frames=5, height=32, width=48, preset="preview")
    base = sampler.sample(loading.load_model(ModelSpec(model="tiny")), image, settings).frames
    tuned_model = loading.load_model(ModelSpec(model="tiny"))
    tuned_model.pipe.load_lora_weights(str(path))
    tuned = sampler.sample(tuned_model, image, settings).frames
    assert not np.array_equal(base, tuned)
    info = AdapterLibrary(tmp_path / "loras").get("t")
    assert info.rank == 8 and info.alpha == 16.0 and info.hotswap and info.trained_on["train_stills"] == 2


def test_published_adapter_carries_the_trained_scale(tmp_path, dataset):
    # rank 8, alpha 16: peft scales B @ A by alpha / rank = 2 at run time; the published diffusers file
    # folds that in, so its B @ A must be twice the trained one, layer by layer.
    trainer, _ = run(config(tmp_path, dataset, steps=2, learning_rate=5e-2, val_fraction=0, name="scale"))
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    trained = get_peft_model_state_dict(trainer.model.pipe.transformer, adapter_name="style")
    published = load_file(str(tmp_path / "loras" / "style" / "scale.safetensors"))
    layers = [k.removesuffix(".lora_A.weight") for k in trained if k.endswith(".lora_A.weight")]
    assert layers and len(published) == 2 * len(layers)
    for layer in layers:
        want = 2.0 * trained[f"{layer}.lora_B.weight"].float() @ trained[f"{layer}.lora_A.weight"].float()
        got = (published[f"transformer.{layer}.lora_B.weight"].float()
               @ published[f"transformer.{layer}.lora_A.weight"].float())
        assert want.abs().max() > 0
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_full_finetuning_step_in_bf16_reaches_the_weights(tmp_path, monkeypatch, fresh_accelerate_state):
    # On a GPU the transformer loads in bf16 (diffusers keeps a few modules in fp32). One step at the seed's
    # learning rate must change the weights as an fp32 step does; in bf16 most such updates round away.
    data = make_dataset(tmp_path / "one", clips=1, stills=1, frames=9)
    load = trainer_module.load_model

    def step_once(name, transformer_dtype, precision):
        start = {}

        def loaded(spec):
            model = load(spec)
            transformer = model.pipe.transformer
            keep = transformer._keep_in_fp32_modules or []
            for param_name, param in transformer.named_parameters():
                if not any(k in param_name.split(".") for k in keep):
                    param.data = param.data.to(torch.bfloat16).to(transformer_dtype)  # one starting point
            start.update({n: p.detach().float().clone() for n, p in transformer.named_parameters()})
            return model

        monkeypatch.setattr(trainer_module, "load_model", loaded)
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(True)
        trainer, _ = run(config(tmp_path, data, method="full", steps=1, learning_rate=3e-5, lr_scheduler="constant",
                                warmup_ratio=0, val_fraction=0, mixed_precision=precision, name=name))
        after = dict(trainer.model.pipe.transformer.named_parameters())
        names = [n for n, v in start.items() if v.dim() == 2]
        return (torch.cat([(after[n].detach().float() - start[n]).flatten() for n in names]),
                {after[n].dtype for n in names})

    delta, dtypes = step_once("bf16", torch.bfloat16, "bf16")
    reference, _ = step_once("fp32", torch.float32, "no")
    assert (reference != 0).float().mean() > 0.99
    changed = (delta != 0).float().mean().item()
    error = ((delta - reference).norm() / reference.norm()).item()
    assert changed > 0.99 and error < 0.25, (changed, error)  # bf16 weights: 6% changed, error 0.97
    assert dtypes == {torch.float32}  # fp32 master weights; bf16 is the compute dtype


def test_second_run_reuses_the_cache(tmp_path, dataset):
    _, first = run(config(tmp_path, dataset, steps=1, name="a"))
    _, second = run(config(tmp_path, dataset, steps=1, name="b"))
    assert second.cache_stats["latents_encoded"] == 0 and second.cache_stats["text_encoded"] == 0
    assert second.cache_stats["latents_cached"] == first.cache_stats["latents_cached"] + \
        first.cache_stats["latents_encoded"]


def test_early_stopping_fires_on_a_plateau(tmp_path, dataset):
    events = []
    _, result = run(config(tmp_path, dataset, steps=20, val_every=1, patience=2, min_delta=10.0, val_seeds=2), events)
    assert result.stages[0].stopped == "early_stop" and result.stages[0].steps_done == 3
    assert result.stages[0].best_step == 1
    validations = [e for e in events if e["type"] == "validation"]
    assert [e["step"] for e in validations] == [1, 2, 3]
    for e in validations:  # both held-out items (the clip and the still), each under both seeds
        assert sorted((s["item"], s["seed"]) for s in e["scores"]) == [("clip0.mp4@0", 0), ("clip0.mp4@0", 1),
                                                                        ("still0.png", 0), ("still0.png", 1)]
        lpips = [s["lpips"] for s in e["scores"]]
        assert e["lpips"] == pytest.approx(np.mean(lpips)) and e["lpips_std"] == pytest.approx(np.std(lpips, ddof=1))
        assert e["clip_text"] == pytest.approx(np.mean([s["clip_text"] for s in e["scores"]]))
        assert len(set(lpips)) > 1  # different items and seeds, different shots
        # Look distance and camera motion are recorded whatever early stopping follows.
        assert e["val_score"] == "lpips" and e["look"] == pytest.approx(np.mean([s["look"] for s in e["scores"]]))
        assert all(s["look"] > 0 and s["camera"]["label"] for s in e["scores"])
        assert e["camera_dx"] == pytest.approx(np.mean([s["camera"]["dx"] for s in e["scores"]]))
    assert any(e["type"] == "early_stop" for e in events)
    sidecar = json.loads((tmp_path / "loras" / "style" / "t.json").read_text())
    assert sidecar["extra"]["best_step"] == 1 and "lpips_std" in sidecar["extra"]["validation"]
    assert (tmp_path / "runs" / "t" / "validation" / "step_0000003.mp4").is_file()


def test_early_stopping_follows_the_mean_not_the_first_sample(tmp_path, dataset, monkeypatch):
    # Scripted scores: the first item's first seed improves at every validation while the mean over
    # items and seeds worsens; the run must stop on the mean after `patience` validations.
    calls = []

    def scripted(model, cache, sample, cfg, accelerator, video_path, seed):
        first = len(calls) % 4 == 0  # the first item under the first seed (2 items x 2 seeds a validation)
        k = len(calls) // 4 + 1  # the validation this call belongs to
        calls.append((sample.label, seed))
        if video_path is not None:
            video_path.write_bytes(b"")
        return {"lpips": 1.0 - 0.1 * k if first else 0.5 + 0.1 * k, "clip_text": 0.0, "look": 1.0,
                "camera": CAMERA, "calibrated": False}, video_path

    monkeypatch.setattr(held_out, "sample_and_score", scripted)
    events = []
    _, result = run(config(tmp_path, dataset, steps=20, val_every=1, patience=2, min_delta=0.0), events)
    validations = [e for e in events if e["type"] == "validation"]
    assert [e["best"] for e in validations] == [True, False, False]
    assert result.stages[0].stopped == "early_stop" and result.stages[0].steps_done == 3
    assert [e["lpips"] for e in validations] == pytest.approx([(0.9 + 3 * 0.6) / 4, (0.8 + 3 * 0.7) / 4,
                                                               (0.7 + 3 * 0.8) / 4])
    assert len(calls) == 12


@pytest.mark.parametrize("val_score, best", [("look", [True, False, False]), ("lpips", [True, True, True, True])])
def test_val_score_look_makes_early_stopping_follow_the_look_distance(tmp_path, dataset, monkeypatch, val_score,
                                                                     best):
    # Scripted scores where the two disagree: LPIPS improves at every validation, the look distance worsens.
    calls = []

    def scripted(model, cache, sample, cfg, accelerator, video_path, seed):
        k = len(calls) // 2 + 1  # the validation this call belongs to (one held-out item x 2 seeds)
        calls.append(seed)
        if video_path is not None:
            video_path.write_bytes(b"")
        return {"lpips": 1.0 - 0.1 * k, "clip_text": 0.0, "look": 100.0 + 10 * k, "camera": CAMERA,
                "calibrated": False}, video_path

    monkeypatch.setattr(held_out, "sample_and_score", scripted)
    events = []
    _, result = run(config(tmp_path, dataset, steps=4, val_every=1, patience=2, min_delta=0.0, val_items=1,
                           val_score=val_score), events)
    validations = [e for e in events if e["type"] == "validation"]
    assert [e["best"] for e in validations] == best
    assert [e["look"] for e in validations] == [110.0, 120.0, 130.0, 140.0][:len(best)]
    stage = result.stages[0]
    if val_score == "look":
        assert (stage.stopped, stage.steps_done, stage.best_step) == ("early_stop", 3, 1)
        assert stage.best_scores["look"] == 110.0 and stage.best_scores["val_score"] == "look"
    else:
        assert (stage.stopped, stage.steps_done, stage.best_step) == ("finished", 4, 4)


@pytest.mark.parametrize("keep_best", [True, False])
def test_keep_best_decides_whether_the_best_or_the_last_weights_are_published(tmp_path, dataset, monkeypatch,
                                                                            keep_best):
    # Scripted scores: the first validation is the best, the later ones worse; early stopping off.
    calls = []

    def scripted(model, cache, sample, cfg, accelerator, video_path, seed):
        calls.append(seed)
        if video_path is not None:
            video_path.write_bytes(b"")
        return {"lpips": 0.1 * len(calls), "clip_text": 0.0, "look": 1.0, "camera": CAMERA,
                "calibrated": False}, video_path

    monkeypatch.setattr(held_out, "sample_and_score", scripted)
    _, result = run(config(tmp_path, dataset, steps=3, val_every=1, val_items=1, val_seeds=1, learning_rate=5e-2,
                           early_stopping=False, keep_best=keep_best, checkpoint_every=1, keep_checkpoints=3))
    assert (result.stages[0].steps_done, result.stages[0].best_step) == (3, 1)
    from safetensors.torch import load_file

    from cinescene import lora_formats

    published = load_file(str(tmp_path / "loras" / "style" / "t.safetensors"))
    step = 1 if keep_best else 3
    saved = load_file(str(tmp_path / "runs" / "t" / "checkpoints" / f"step_{step:07d}" / "adapter.safetensors"))
    expected = lora_formats.from_peft(saved, 8, 16.0)
    assert published.keys() == expected.keys() and all(torch.equal(published[k], expected[k]) for k in published)
    sidecar = json.loads((tmp_path / "loras" / "style" / "t.json").read_text())
    assert sidecar["extra"]["weights"] == ("best" if keep_best else "last")


def test_val_score_is_checked():
    with pytest.raises(InputError, match="validation score must be one of lpips, look"):
        train_config.build(data="x", name="t", val_score="fvd")


def test_resume_continues_bit_for_bit(tmp_path, dataset):
    # 12 micro-steps over epochs of 10 samples: the resumed steps start mid-epoch and cross into the next.
    common = dict(steps=6, learning_rate=1e-2, val_fraction=0, grad_accum=2)
    run(config(tmp_path, dataset, name="straight", **common))
    stop_at = {}

    def interrupt(event):
        if event["type"] == "step" and event["step"] == 3:
            stop_at["trainer"].request_stop()

    trainer = Trainer(config(tmp_path, dataset, name="resumed", **common), on_event=interrupt)
    stop_at["trainer"] = trainer
    first = trainer.run()
    assert first.stages[0].stopped == "interrupted" and first.stages[0].steps_done == 3
    checkpoint = tmp_path / "runs" / "resumed" / "checkpoints" / "step_0000003"
    assert (checkpoint / "adapter.safetensors").is_file() and (checkpoint / "optimizer.bin").is_file()
    assert AdapterLibrary(tmp_path / "loras").find("resumed") is None  # nothing published yet
    events = []
    trainer, second = run(config(tmp_path, dataset, name="resumed", resume=True, **common), events)
    assert next(e for e in events if e["type"] == "stage_start")["resumed_from"] == 3
    assert [e["step"] for e in events if e["type"] == "step"] == [4, 5, 6]
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "loras" / "style" / "straight.safetensors"))
    b = load_file(str(tmp_path / "loras" / "style" / "resumed.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The published adapter is the best one, restored from before the interruption; the last trained
    # weights and every step's loss show whether the resumed steps saw the same batches and noise.
    last = "checkpoints/step_0000006/adapter.safetensors"
    a, b = (load_file(str(tmp_path / "runs" / n / last)) for n in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = {n: [(e["step"], e["loss"]) for e in read_log(tmp_path / "runs" / n / "log.jsonl") if e["type"] == "step"]
              for n in ("straight", "resumed")}
    assert losses["resumed"] == losses["straight"] and len(losses["straight"]) == 6


def test_bad_dataset_leaves_no_cache_run_or_adapter(tmp_path):
    data = make_dataset(tmp_path / "bad", clips=2, stills=0)
    blob = (data / "clip1.mp4").read_bytes()
    (data / "clip1.mp4").write_bytes(blob[: len(blob) // 3])
    before = files_under(tmp_path)
    with pytest.raises(DatasetError, match="clip1.mp4: (truncated|not a readable video)"):
        run(config(tmp_path, data, cache_dir=None))
    assert files_under(tmp_path) == before


def test_existing_adapter_name_is_refused_before_any_work(tmp_path, dataset):
    run(config(tmp_path, dataset, steps=1, name="taken"))
    from cinescene.errors import InputError

    with pytest.raises(InputError, match="already exists"):
        run(config(tmp_path, dataset, steps=1, name="taken"))


def test_full_finetuning_writes_a_transformer_folder(tmp_path, dataset, still):
    _, result = run(config(tmp_path, dataset, method="full", steps=2, learning_rate=1e-3, val_fraction=0,
                           name="full"))
    folder = tmp_path / "models" / "full"
    assert result.stages[0].output == str(folder) and loading.is_transformer_folder(folder)
    assert json.loads((folder / "cinescene.json").read_text())["base_model"] == "tiny"
    finetuned = loading.load_model(ModelSpec(model="tiny", transformer=str(folder)))
    image = media.load_image(still)
    settings = SampleSettings(prompt="x", steps=2, frames=5, height=32, width=48, preset="preview")
    assert not np.array_equal(sampler.sample(finetuned, image, settings).frames,
                              sampler.sample(loading.load_model(ModelSpec(model="tiny")), image, settings).frames)


def test_fp8_storage_of_the_frozen_base(tmp_path, dataset):
    trainer, result = run(config(tmp_path, dataset, steps=2, fp8_base=True, val_fraction=0, name="fp8"))
    transformer = trainer.model.pipe.transformer
    stored = {p.dtype for n, p in transformer.named_parameters() if n in ("blocks.0.attn2.to_q.base_layer.weight", "blocks.0.attn1.to_q.weight")}
    assert stored == {torch.float8_e4m3fn}
    assert all(p.dtype == torch.float32 for n, p in transformer.named_parameters() if "lora_" in n)
    assert result.stages[0].steps_done == 2


def test_config_file_and_flags(tmp_path):
    toml = tmp_path / "train.toml"
    toml.write_text('[train]\nrank = 16\nlearning_rate = 1e-4\nstage = "motion"\n')
    values = train_config.load_file(toml)
    cfg = train_config.build(values, data="x", name="n", rank=4)
    assert (cfg.rank, cfg.learning_rate, cfg.stage) == (4, 1e-4, "motion")
    assert (cfg.alpha, cfg.grad_accum, cfg.steps, cfg.weight_decay, cfg.warmup_ratio) == (16.0, 4, 4000, 0.01, 0.05)
    yaml = tmp_path / "train.yaml"
    yaml.write_text("rank: 32\nadam_betas: [0.9, 0.99]\n")
    assert train_config.build(train_config.load_file(yaml), data="x", name="n").adam_betas == (0.9, 0.99)
    from cinescene.errors import InputError

    for bad in ({"rank": 0}, {"window": 8}, {"stage": "color"}, {"learning_rate": 5}, {"bogus": 1}):
        with pytest.raises(InputError):
            train_config.build(bad, data="x", name="n")
