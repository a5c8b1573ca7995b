"""Memory auto picks from the estimate of the model asked for (Wan2.2 A14B stores two experts)."""

from __future__ import annotations

import torch

from cinescene import placement
from cinescene.settings import HUB_480P, HUB_WAN22_I2V, ModelSpec


def test_memory_auto_estimates_the_model_asked_for(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (80e9, 80e9))
    cuda = torch.device("cuda", 0)
    notes: list[str] = []
    wan21 = placement.auto_memory(ModelSpec(model=HUB_480P, memory="auto"), cuda, notes)
    wan22 = placement.auto_memory(ModelSpec(model=HUB_WAN22_I2V, memory="auto"), cuda, notes)
    # 80 GB holds Wan2.1's 14B resident; two 14B experts in bf16 do not fit beside the rest.
    assert (wan21.memory, wan21.fp8) == ("none", False)
    assert (wan22.memory, wan22.fp8) == ("none", True)
    assert all("picked" in note for note in notes)
