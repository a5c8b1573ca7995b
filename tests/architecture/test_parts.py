"""Part configs for every kind of model, offline: tiny, shipped (Wan2.1 and Wan2.2), and folders."""

from __future__ import annotations

import json

import pytest

from cinescene import architecture, loading
from cinescene.errors import InputError
from cinescene.settings import HUB_480P, HUB_WAN22_I2V, HUB_WAN22_TI2V, TINY_TI2V, TINY_WAN22


def test_shipped_wan22_parts():
    assert architecture.present_parts(HUB_WAN22_I2V) == ("transformer", "transformer_2", "vae", "text_encoder")
    assert architecture.present_parts(HUB_WAN22_TI2V) == ("transformer", "vae", "text_encoder")
    a14b = architecture.configs(HUB_WAN22_I2V)
    assert a14b["transformer"] == a14b["transformer_2"]  # the convert script builds both experts from one config
    assert a14b["transformer"]["image_dim"] is None and a14b["transformer"]["in_channels"] == 36
    assert a14b["vae"] == architecture.part_config(HUB_480P, "vae")  # Wan2.2 A14B keeps Wan2.1's VAE
    ti2v = architecture.configs(HUB_WAN22_TI2V)
    assert ti2v["vae"]["z_dim"] == 48 and ti2v["vae"]["scale_factor_spatial"] == 16 and ti2v["vae"]["patch_size"] == 2
    assert len(ti2v["vae"]["latents_mean"]) == len(ti2v["vae"]["latents_std"]) == 48
    assert ti2v["transformer"]["in_channels"] == ti2v["transformer"]["out_channels"] == 48


def test_a_part_a_model_lacks_is_named():
    with pytest.raises(InputError, match="has no image_encoder"):
        architecture.part_config(HUB_WAN22_I2V, "image_encoder")
    with pytest.raises(InputError, match="tiny-wan22 model has no image_encoder"):
        architecture.part_config(TINY_WAN22, "image_encoder")


def test_a_saved_folders_parts_come_from_its_model_index(tmp_path):
    loading.build_tiny_pipeline(model=TINY_TI2V).save_pretrained(tmp_path / "ti2v")
    folder = str(tmp_path / "ti2v")
    assert json.loads((tmp_path / "ti2v" / "model_index.json").read_text())["transformer_2"] == [None, None]
    assert architecture.present_parts(folder) == ("transformer", "vae", "text_encoder")
    assert architecture.configs(folder)["vae"]["z_dim"] == 48
    assert architecture.family(folder) == architecture.WAN22_TI2V
