"""The size preset and sampling defaults a Wan2.2 model starts from (Wan2.1's are in tests/test_loading.py)."""

from __future__ import annotations

from cinescene import architecture
from cinescene.settings import HUB_WAN22_I2V, HUB_WAN22_TI2V, PRESETS, TINY_WAN22


def test_wan22_models_start_from_their_official_size():
    assert architecture.model_preset(HUB_WAN22_I2V) == architecture.PresetChoice(
        "720P", "the model family's official size")
    assert architecture.model_preset(HUB_WAN22_TI2V).name == "704P"
    assert PRESETS["704P"].area == 1280 * 704  # TI2V-5B's 720P (Wan2.2 SUPPORTED_SIZES['ti2v-5B'])
    assert architecture.model_preset(HUB_WAN22_I2V, "480P").name == "480P"  # A14B does 480P too


def test_shots_start_from_the_familys_defaults():
    shot = architecture.defaults_for(HUB_WAN22_I2V).settings("a dolly-in")
    assert (shot.steps, shot.guidance, shot.guidance_2, shot.boundary, shot.shift) == (40, 3.5, 3.5, 0.9, 5.0)
    shot = architecture.defaults_for(HUB_WAN22_TI2V).settings("a dolly-in")
    assert (shot.steps, shot.frames, shot.fps, shot.guidance, shot.shift) == (50, 121, 24, 5.0, 5.0)
    tiny = architecture.defaults_for(TINY_WAN22)
    assert (tiny.steps, tiny.frames, tiny.preset, tiny.boundary) == (8, 17, "preview", 0.9)


def test_an_unreadable_model_starts_from_wan21s_defaults_offline(netguard_log):
    # No network here: an unknown hub id not in the cache must not be fetched to fill a form.
    defaults = architecture.defaults_for("someone/some-wan-model")
    assert (defaults.steps, defaults.shift, defaults.boundary) == (40, None, None)
