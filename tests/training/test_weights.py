"""A stage's weights: the full transformer folder and the replicas' checksums, on one CPU process."""

from __future__ import annotations

import json

import pytest
import torch

from cinescene import loading
from cinescene.settings import ModelSpec
from cinescene.training import weights


@pytest.fixture
def accelerator(fresh_accelerate_state):
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def test_replica_checksums_follow_the_weights_bit_for_bit(accelerator):
    params = [torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.zeros(4))]
    first = weights.replica_checksums(accelerator, params)
    assert len(first) == 1 and first == weights.replica_checksums(accelerator, params)
    with torch.no_grad():
        params[1][2] = 2 ** -20  # the smallest change a replica could drift by is still seen
    assert weights.replica_checksums(accelerator, params) != first


def test_a_published_transformer_replaces_the_folder_whole_and_loads(tmp_path, accelerator):
    transformer = loading.load_model(ModelSpec(model="tiny")).pipe.transformer
    folder = tmp_path / "tuned"
    folder.mkdir()
    (folder / "stale.txt").write_text("from an earlier run")
    weights.publish_transformer(accelerator, transformer, type(transformer), transformer.config, folder,
                                {"base_model": "tiny"})
    assert not (folder / "stale.txt").exists() and not list(tmp_path.glob(".*tmp"))
    assert json.loads((folder / "cinescene.json").read_text()) == {"base_model": "tiny"}
    loaded = type(transformer).from_pretrained(folder)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), transformer.state_dict().values()))
