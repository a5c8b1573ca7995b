"""Published Wan2.2 pairs' file names: which half is which, and what the pair is called."""

from __future__ import annotations

import pytest

from cinescene import pair_files
from cinescene.errors import InputError

# (high-noise file, low-noise file, the name import gives the pair), as published.
PUBLISHED = [
    ("wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors",  # Comfy-Org repackaged
     "wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors", "wan2.2_i2v_lightx2v_4steps_lora_v1"),
    ("Wan2.2-Lightning_I2V-A14B-4steps-lora_HIGH_fp16.safetensors",  # Kijai
     "Wan2.2-Lightning_I2V-A14B-4steps-lora_LOW_fp16.safetensors", "Wan2.2-Lightning_I2V-A14B-4steps-lora_fp16"),
    ("wan2.2_i2v_A14b_high_noise_lora_rank64_lightx2v_4step_1022.safetensors",  # lightx2v/Wan2.2-Distill-Loras
     "wan2.2_i2v_A14b_low_noise_lora_rank64_lightx2v_4step_1022.safetensors",
     "wan2.2_i2v_A14b_lora_rank64_lightx2v_4step_1022"),
    ("orbit_high_noise.safetensors", "orbit_low_noise.safetensors", "orbit"),  # ai-toolkit
    ("DoggyStyle_t2v_HighNoise.safetensors", "DoggyStyle_t2v_LowNoise.safetensors", "DoggyStyle_t2v"),  # Civitai
    ("Wan2.2-I2V-A14B-HighNoise-Q8_0.safetensors", "Wan2.2-I2V-A14B-LowNoise-Q8_0.safetensors",
     "Wan2.2-I2V-A14B_Q8_0"),
]


@pytest.mark.parametrize("high, low, name", PUBLISHED, ids=[p[2] for p in PUBLISHED])
def test_published_names_tell_the_halves_apart(high, low, name):
    assert pair_files.marked_expert(high) == "high_noise" and pair_files.marked_expert(low) == "low_noise"
    assert pair_files.sort_pair(low, high) == pair_files.sort_pair(high, low)
    assert [p.name for p in pair_files.sort_pair(low, high)] == [high, low]
    assert pair_files.pair_name(high, low) == name


@pytest.mark.parametrize("filename", ["high_contrast_look.safetensors", "slow_noise_grade.safetensors",
                                      "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors",
                                      "thigh_noise.safetensors", "look_high.safetensors",
                                      "grade_HIGH_and_LOW.safetensors"])
def test_names_that_mark_no_expert(filename):
    assert pair_files.marked_expert(filename) is None


def test_plain_high_and_low_words_count_only_for_two_files_given_together():
    assert [p.name for p in pair_files.sort_pair("look_low.safetensors", "look_high.safetensors")] == [
        "look_high.safetensors", "look_low.safetensors"]
    assert pair_files.pair_name("look_high.safetensors", "look_low.safetensors") == "look"
    with pytest.raises(InputError, match="cannot tell which"):
        pair_files.sort_pair("grade_a.safetensors", "grade_b.safetensors")
    with pytest.raises(InputError, match="cannot tell which"):
        pair_files.sort_pair("a_high_noise.safetensors", "b_high_noise.safetensors")


def test_a_folder_per_pair_names_it_by_the_folder(tmp_path):
    folder = tmp_path / "Wan2.2-I2V-A14B-4steps-lora-rank64-Seko-V1"  # lightx2v/Wan2.2-Lightning's layout
    assert pair_files.pair_name(folder / "high_noise_model.safetensors",
                                folder / "low_noise_model.safetensors") == folder.name


def test_halves_of_different_ranks_share_the_common_part_of_their_names():
    assert pair_files.pair_name("lightning_HIGH_rank128.safetensors", "lightning_LOW_rank64.safetensors") == \
        "lightning_rank"


def test_halves_given_the_wrong_way_round_are_refused():
    pair_files.check_roles("x_high_noise.safetensors", "x_low_noise.safetensors")
    pair_files.check_roles("a.safetensors", "b.safetensors")  # names that say nothing: the caller knows
    with pytest.raises(InputError, match="x_low_noise.safetensors is named as the low-noise half"):
        pair_files.check_roles("x_low_noise.safetensors", "x_high_noise.safetensors")


def test_the_other_half_is_found_beside_a_file(tmp_path):
    for name in ("look_HIGH_fp16", "look_LOW_fp16", "other_LOW_fp16", "look_LOW_bf16"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    assert pair_files.partner(tmp_path / "look_HIGH_fp16.safetensors") == tmp_path / "look_LOW_fp16.safetensors"
    assert pair_files.partner(tmp_path / "other_LOW_fp16.safetensors") is None
    assert pair_files.partner(tmp_path / "unmarked.safetensors") is None
