"""The sidecar: older sidecars still read, a pair names its parts, part files cannot clash with names."""

from __future__ import annotations

from pathlib import Path

import pytest

from cinescene.adapter_sidecar import AdapterInfo, check_name, pair_digest, part_filename
from cinescene.errors import InputError

BEFORE_PAIRS = {  # a sidecar as cinescene wrote it before Wan2.2 pairs: no placement, no parts
    "name": "noir", "kind": "style", "rank": 4, "alpha": 4.0, "target_modules": ["attn2.to_q"], "blocks": 2,
    "base_model": "tiny", "base_fingerprint": {"inner_dim": 24}, "default_strength": 1.0, "sha256": "a" * 64,
    "size_bytes": 10, "created": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize("kind, placement", [("style", "low_noise"), ("motion", "high_noise"), ("speed", "both")])
def test_a_sidecar_from_before_pairs_reads_with_its_kinds_placement(kind, placement):
    info = AdapterInfo.from_json({**BEFORE_PAIRS, "kind": kind}, Path("loras/x/noir.safetensors"))
    assert info.placement == placement and not info.is_pair
    assert [(f.expert, f.path, f.sha256) for f in info.files()] == [(None, Path("loras/x/noir.safetensors"), "a" * 64)]
    assert AdapterInfo.from_json({**BEFORE_PAIRS, "kind": kind, "placement": "both"}, Path("n")).placement == "both"


def test_a_pair_lists_its_halves_in_denoising_order():
    parts = {expert: {"file": part_filename("duo", expert), "sha256": expert[0] * 64, "size_bytes": 5}
             for expert in ("low_noise", "high_noise")}
    info = AdapterInfo.from_json({**BEFORE_PAIRS, "name": "duo", "parts": parts}, Path("loras/style/duo.safetensors"))
    assert info.is_pair and info.placement == "both" and info.label() == "duo (pair)"
    assert [(f.expert, f.path.name) for f in info.files()] == [("high_noise", "duo@high_noise.safetensors"),
                                                              ("low_noise", "duo@low_noise.safetensors")]


def test_the_pair_digest_names_both_halves():
    digest = pair_digest({"high_noise": "1" * 64, "low_noise": "2" * 64})
    assert digest == pair_digest({"low_noise": "2" * 64, "high_noise": "1" * 64})
    assert digest != pair_digest({"high_noise": "2" * 64, "low_noise": "1" * 64})  # halves swapped
    assert digest != pair_digest({"high_noise": "1" * 64, "low_noise": "3" * 64})


def test_no_adapter_name_can_be_a_part_file_of_another():
    with pytest.raises(InputError, match="not allowed"):
        check_name(Path(part_filename("look", "high_noise")).stem)
