"""Which Wan a model is, read from its files, and the official defaults each family starts from."""

from __future__ import annotations

import pytest

from cinescene import architecture
from cinescene.errors import InputError
from cinescene.settings import HUB_480P, HUB_WAN22_I2V, HUB_WAN22_TI2V, TINY, TINY_TI2V, TINY_WAN22

# model_index.json as the three kinds of repository carry it (diffusers writes absent components as [null, null]).
WAN21_INDEX = {"_class_name": "WanImageToVideoPipeline", "boundary_ratio": None, "expand_timesteps": False,
               "image_encoder": ["transformers", "CLIPVisionModel"], "transformer": ["diffusers", "WanTransformer3DModel"],
               "transformer_2": [None, None], "vae": ["diffusers", "AutoencoderKLWan"]}
A14B_INDEX = {**WAN21_INDEX, "boundary_ratio": 0.9, "image_encoder": [None, None],
              "transformer_2": ["diffusers", "WanTransformer3DModel"]}
TI2V_INDEX = {"_class_name": "WanPipeline", "boundary_ratio": None, "expand_timesteps": True,
              "transformer": ["diffusers", "WanTransformer3DModel"], "transformer_2": [None, None],
              "vae": ["diffusers", "AutoencoderKLWan"]}


def test_the_three_families_are_told_apart_by_their_model_index():
    assert architecture.family_of(WAN21_INDEX, {"z_dim": 16}, "x") == architecture.WAN21
    a14b = architecture.family_of(A14B_INDEX, {"z_dim": 16}, "x")
    assert a14b.two_experts and a14b.boundary_ratio == 0.9 and a14b.experts == ("high_noise", "low_noise")
    assert not a14b.image_encoder and not a14b.expand_timesteps
    ti2v = architecture.family_of(TI2V_INDEX, {"z_dim": 48}, "x")
    assert ti2v == architecture.WAN22_TI2V and ti2v.experts == ("transformer",) and ti2v.expand_timesteps


def test_the_wan22_vae_alone_marks_a_ti2v_model():
    # A folder written by an older diffusers without expand_timesteps in its index: the VAE's 48 channels tell.
    index = {k: v for k, v in TI2V_INDEX.items() if k != "expand_timesteps"}
    assert architecture.family_of(index, {"z_dim": 48}, "x") == architecture.WAN22_TI2V
    assert architecture.family_of({**WAN21_INDEX, "expand_timesteps": None}, {"z_dim": 16}, "x") == architecture.WAN21


@pytest.mark.parametrize("index, vae, match", [
    ({**TI2V_INDEX, "expand_timesteps": False}, {"z_dim": 16}, "holds a WanPipeline"),  # Wan2.1 text-to-video
    ({**A14B_INDEX, "_class_name": "WanPipeline"}, {"z_dim": 16}, "holds a WanPipeline"),  # Wan2.2 T2V A14B
    ({**WAN21_INDEX, "_class_name": "FluxPipeline"}, {}, "holds a FluxPipeline"),
    ({**A14B_INDEX, "expand_timesteps": True}, {"z_dim": 48}, "two experts and the Wan2.2 VAE"),
])
def test_what_cinescene_cannot_run_is_refused_by_name(index, vae, match):
    with pytest.raises(InputError, match=match):
        architecture.family_of(index, vae, "the folder")


def test_known_models_need_no_files():
    assert architecture.family(HUB_480P) == architecture.WAN21
    assert architecture.family(HUB_WAN22_I2V) == architecture.WAN22_I2V
    assert architecture.family(HUB_WAN22_TI2V) == architecture.WAN22_TI2V
    assert architecture.family(TINY) == architecture.WAN21
    assert architecture.family(TINY_WAN22).boundary_ratio == architecture.TINY_WAN22_BOUNDARY
    assert architecture.family(TINY_TI2V).expand_timesteps


def test_official_defaults_are_wan22s_own():
    # Wan2.2 wan/configs/wan_i2v_A14B.py and wan_ti2v_5B.py, shared_config.py.
    a14b = architecture.official_defaults(architecture.WAN22_I2V)
    assert (a14b.steps, a14b.guidance, a14b.guidance_2, a14b.shift, a14b.boundary) == (40, 3.5, 3.5, 5.0, 0.9)
    assert (a14b.frames, a14b.fps, a14b.preset) == (81, 16, "720P")
    ti2v = architecture.official_defaults(architecture.WAN22_TI2V)
    assert (ti2v.steps, ti2v.guidance, ti2v.guidance_2, ti2v.shift, ti2v.boundary) == (50, 5.0, None, 5.0, None)
    assert (ti2v.frames, ti2v.fps, ti2v.preset) == (121, 24, "704P")
    wan21 = architecture.official_defaults(architecture.WAN21)
    assert (wan21.steps, wan21.guidance, wan21.shift, wan21.frames) == (40, 5.0, None, 81)  # shift: the preset's


def test_a_folder_that_states_another_boundary_keeps_it():
    family = architecture.family_of({**A14B_INDEX, "boundary_ratio": 0.875}, {"z_dim": 16}, "x")
    assert architecture.official_defaults(family).boundary == 0.875
