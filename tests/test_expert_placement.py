"""Placement: which experts of Wan2.2 A14B an adapter acts on, and which file each expert gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from cinescene import expert_placement as ep
from cinescene.adapters import KINDS
from cinescene.errors import InputError

HIGH = ep.PartFile("high_noise", Path("p@high_noise.safetensors"), "h" * 64, 1)
LOW = ep.PartFile("low_noise", Path("p@low_noise.safetensors"), "l" * 64, 1)
SINGLE = ep.PartFile(None, Path("s.safetensors"), "s" * 64, 1)
TWO = ("high_noise", "low_noise")


def test_defaults_motion_lays_out_style_renders_speed_everywhere_pairs_as_published():
    assert set(ep.KIND_DEFAULTS) == set(KINDS)
    assert [ep.default_placement(kind, paired=False) for kind in ("style", "motion", "speed")] == \
        ["low_noise", "high_noise", "both"]
    assert {ep.default_placement(kind, paired=True) for kind in KINDS} == {"both"}


@pytest.mark.parametrize("placement, expected", [("both", {"high_noise": HIGH, "low_noise": LOW}),
                                                 ("high_noise", {"high_noise": HIGH}),
                                                 ("low_noise", {"low_noise": LOW})])
def test_a_pair_gives_each_expert_its_own_half(placement, expected):
    assert ep.assign(TWO, [HIGH, LOW], placement, "p") == expected


@pytest.mark.parametrize("placement, experts", [("both", TWO), ("high_noise", ("high_noise",)),
                                                ("low_noise", ("low_noise",))])
def test_a_single_file_goes_on_the_experts_its_placement_names(placement, experts):
    assert ep.assign(TWO, [SINGLE], placement, "s") == {expert: SINGLE for expert in experts}


def test_one_expert_takes_a_single_file_whatever_its_placement_and_refuses_a_pair():
    assert ep.assign(("transformer",), [SINGLE], "high_noise", "s") == {"transformer": SINGLE}
    with pytest.raises(InputError, match="'p' is a Wan2.2 pair"):
        ep.assign(("transformer",), [HIGH, LOW], "both", "p")


def test_unknown_placements_are_refused():
    with pytest.raises(InputError, match="unknown placement 'sideways'"):
        ep.experts_of("sideways")
    assert ep.experts_of("both") == TWO
