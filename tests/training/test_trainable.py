"""What a stage trains, set up on a private tiny pipeline (no trainer run)."""

from __future__ import annotations

import re

import pytest
import torch

from cinescene import loading, slots
from cinescene.adapters import AdapterLibrary
from cinescene.settings import ModelSpec
from cinescene.training import config as train_config
from cinescene.training import trainable


@pytest.fixture
def pipe():
    return loading.load_model(ModelSpec(model="tiny")).pipe  # a private copy: prepare adds adapters to it


def settings(tmp_path, **changes):
    return train_config.build(model="tiny", data=str(tmp_path), name="t", loras_dir=str(tmp_path / "loras"),
                              **changes)


@pytest.mark.parametrize("stage", ["style", "motion"])
def test_only_the_stages_lora_on_its_slot_is_trainable(tmp_path, pipe, stage):
    params = trainable.prepare(settings(tmp_path, stage=stage), pipe, AdapterLibrary(tmp_path / "loras"), stage, None)
    names = {n for n, p in pipe.transformer.named_parameters() if p.requires_grad}
    assert {id(p) for p in params} == {id(p) for p in pipe.transformer.parameters() if p.requires_grad}
    targets = slots.slot_modules(pipe.transformer, slots.SLOTS[stage])
    assert len(names) == 2 * len(targets)
    for name in names:
        module = re.sub(r"\.lora_[AB]\.\w+\.weight$", "", name).replace(".base_layer", "")
        assert f".{stage}." in name and re.fullmatch(slots.SLOTS[stage].pattern, module), name
    assert all(p.dtype == torch.float32 for p in params)
    assert not any(p.requires_grad for m in (pipe.vae, pipe.text_encoder, pipe.image_encoder) for p in m.parameters())


def test_the_initial_lora_depends_on_the_unit_not_on_what_ran_before(tmp_path, pipe):
    cfg = settings(tmp_path, stage="style")
    first = [p.detach().clone() for p in trainable.prepare(cfg, pipe, AdapterLibrary(tmp_path), "style", None)]
    torch.manual_seed(1234)  # another draw from the global RNG in between
    other = loading.load_model(ModelSpec(model="tiny")).pipe
    again = trainable.prepare(cfg, other, AdapterLibrary(tmp_path), "style", None)
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_full_finetuning_trains_every_transformer_weight_in_fp32(tmp_path, pipe):
    pipe.transformer.to(torch.bfloat16)  # as it comes on a GPU
    params = trainable.prepare(settings(tmp_path, stage="style", method="full"), pipe, AdapterLibrary(tmp_path),
                               "style", None)
    assert len(params) == len(list(pipe.transformer.parameters()))
    assert all(p.requires_grad and p.dtype == torch.float32 for p in params)
    assert not any(p.requires_grad for p in pipe.vae.parameters())


def test_fp8_storage_without_a_device_computes_on_the_transformers_own(tmp_path, pipe):
    trainable.prepare(settings(tmp_path, stage="style", fp8_base=True), pipe, AdapterLibrary(tmp_path), "style", None)
    stored = dict(pipe.transformer.named_parameters())
    assert stored["blocks.0.attn1.to_q.weight"].dtype == torch.float8_e4m3fn
    assert all(p.dtype == torch.float32 for n, p in stored.items() if "lora_" in n)
