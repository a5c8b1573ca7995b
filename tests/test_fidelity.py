"""cinescene against the real Wan2.1-I2V-14B transformer, built on the meta device (no weights, no download)."""

from __future__ import annotations

import types

import pytest
import yaml

from cinescene import architecture, loading, lora_original, slots
from cinescene.settings import HUB_480P

from conftest import ROOT

D, BLOCKS = 5120, 40


@pytest.fixture(scope="module")
def skeleton():
    return architecture.transformer_skeleton(HUB_480P)


def test_every_slot_resolves_on_the_real_layers(skeleton):
    counts = {name: len(slots.slot_modules(skeleton, spec)) for name, spec in slots.SLOTS.items()}
    # speed: every block layer, plus the time, text and image embedders' seven and the output head
    assert counts == {"style": 6 * BLOCKS, "motion": 4 * BLOCKS, "speed": 12 * BLOCKS + 8}
    style = slots.slot_modules(skeleton, slots.SLOTS["style"])
    assert {(m.in_features, m.out_features) for m in style.values()} == {(D, D)}  # image k/v project 5120 -> 5120
    assert not set(style) & set(slots.slot_modules(skeleton, slots.SLOTS["motion"]))  # disjoint by design


# Two adapters in one model is what the slots are; peft warns about it when injected directly.
@pytest.mark.filterwarnings("ignore:Already found a `peft_config`:UserWarning")
# peft 0.21's check for unsharded tensors takes lora_B.bias (1-D by nature, lora_bias=True) for a ZeRO-3 shard.
@pytest.mark.filterwarnings("ignore:Adapter .* LoRA tensor.* have invalid shape")
def test_adapter_keys_are_what_diffusers_writes_for_this_model(skeleton):
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

    for name, spec in (("style", slots.SLOTS["style"]), ("motion", slots.SLOTS["motion"])):
        # Slots carry LoRA biases (what ComfyUI files call diff_b).
        inject_adapter_in_model(LoraConfig(r=8, lora_alpha=16, target_modules=spec.pattern, lora_bias=True),
                                skeleton, adapter_name=name)
        # save_lora_weights prefixes peft's keys with "transformer."; that is the stored layout.
        written = {f"transformer.{k}" for k in get_peft_model_state_dict(skeleton, adapter_name=name)}
        placeholder = slots._placeholder(skeleton, spec)  # meta tensors: names and shapes, no memory
        assert written == set(placeholder)
        assert all(v.shape[0 if ".lora_A." in k else 1] == spec.max_rank for k, v in placeholder.items()
                   if k.endswith(".weight"))
        expected = 3 * len(slots.slot_modules(skeleton, spec))
        assert len(written) == expected
        count = slots.lora_param_count(skeleton, name)
        assert count == (6 if name == "style" else 4) * BLOCKS * (8 * (D + D) + D)
    assert slots.lora_param_count(skeleton, "style") == 20_889_600
    assert slots.lora_param_count(skeleton, "motion") == 13_926_400


def test_comfyui_names_cover_every_real_layer(skeleton):
    modules = sorted(slots.slot_modules(skeleton, slots.SLOTS["speed"]))
    names = lora_original.original_names(modules)
    assert all(m in names for m in modules)
    assert names["blocks.39.attn2.add_k_proj"] == "blocks.39.cross_attn.k_img"
    assert names["proj_out"] == "head.head" and names["condition_embedder.time_proj"] == "time_projection.1"


def test_training_freezes_all_but_the_slot_and_checkpoints_the_real_block(skeleton):
    from cinescene.training import config as train_config
    from cinescene.training.trainer import Trainer

    fresh = architecture.transformer_skeleton(HUB_480P)
    tiny = loading.build_tiny_pipeline()
    pipe = types.SimpleNamespace(transformer=fresh, vae=tiny.vae, text_encoder=tiny.text_encoder,
                                 image_encoder=tiny.image_encoder)
    trainer = Trainer(train_config.build(model=HUB_480P, data="unused", name="fidelity", stage="motion"))
    params = trainer.prepare_trainable(types.SimpleNamespace(pipe=pipe), "motion", None)
    trainable = [n for n, p in fresh.named_parameters() if p.requires_grad]
    assert len(trainable) == len(params) == 2 * 4 * BLOCKS
    assert all(".motion." in n and "attn1" in n for n in trainable)
    assert sum(p.numel() for p in params) == 13_107_200
    fresh.enable_gradient_checkpointing()
    # The loop checkpoints each block of the real class; compile and FSDP wrap the same class.
    assert fresh.gradient_checkpointing and type(fresh.blocks[0]).__name__ == "WanTransformerBlock"
    assert fresh._repeated_blocks == ["WanTransformerBlock"] == fresh._no_split_modules
    fsdp = yaml.safe_load((ROOT / "configs" / "accelerate" / "fsdp_8gpu.yaml").read_text())
    assert fsdp["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"] == "WanTransformerBlock"
