"""Where a model's part configs come from: the tiny models, shipped files, a local folder, or the hub.

Everything here is read without loading a weight. The real models' configs ship in
``shipped_configs/`` (Wan2.1 I2V 14B, Wan2.2 I2V A14B, Wan2.2 TI2V-5B), so parameter counts, adapter
checks and family detection work offline for their hub ids.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, ModelNotFoundError
from ..settings import HUB_480P, HUB_720P, HUB_WAN22_I2V, HUB_WAN22_TI2V, TINY_MODELS, TOY
from .tiny import TINY_PARTS

# Every part a Wan I2V pipeline may have; Wan2.2 has no image encoder, and only A14B a second transformer.
PARTS = ("transformer", "transformer_2", "vae", "text_encoder", "image_encoder")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

_PACKAGE = Path(__file__).resolve().parent.parent
_SHIPPED_DIR = _PACKAGE / "shipped_configs"
TOY_FOLDER = _PACKAGE / "toy" / "model"
# A model folder may say how it wants to be sampled (the toy model does): {"sampling": {"preset", "steps", ...}}.
SAMPLING_FILE = "cinescene.json"


def location(model: str) -> str:
    """Where a named model lives: ``toy`` is the folder cinescene ships; anything else is itself."""
    return str(TOY_FOLDER) if model == TOY else model


def folder_sampling(model: str) -> dict[str, Any]:
    """The sampling defaults a model folder states in its ``cinescene.json`` ({} when it states none)."""
    path = Path(location(model)).expanduser() / SAMPLING_FILE
    if not path.is_file():
        return {}
    try:
        sampling = json.loads(path.read_text()).get("sampling") or {}
    except (OSError, ValueError, AttributeError) as err:
        raise InputError(f"{path} is not readable JSON with a sampling section ({err})") from err
    return {k: v for k, v in sampling.items() if k in ("preset", "steps", "frames", "guidance", "negative_prompt")}


_WAN21 = {part: f"wan2.1-i2v-14b.{part}" for part in ("transformer", "vae", "text_encoder", "image_encoder")}
# Files per part of each shipped model. Wan2.2 reuses Wan2.1's VAE (A14B) and umt5-xxl text encoder (both):
# Wan2.2 wan/configs/wan_i2v_A14B.py vae_checkpoint = 'Wan2.1_VAE.pth', t5_checkpoint of both configs
# 'models_t5_umt5-xxl-enc-bf16.pth'; diffusers' convert script loads google/umt5-xxl for every Wan.
_SHIPPED: dict[str, dict[str, str]] = {
    HUB_480P: _WAN21,  # one architecture, two resolutions
    HUB_720P: _WAN21,
    HUB_WAN22_I2V: {"transformer": "wan2.2-i2v-a14b.transformer", "transformer_2": "wan2.2-i2v-a14b.transformer",
                    "vae": _WAN21["vae"], "text_encoder": _WAN21["text_encoder"]},
    HUB_WAN22_TI2V: {"transformer": "wan2.2-ti2v-5b.transformer", "vae": "wan2.2-ti2v-5b.vae",
                     "text_encoder": _WAN21["text_encoder"]},
}
SHIPPED_MODELS = tuple(_SHIPPED)


def shipped_config(model: str, part: str) -> dict[str, Any] | None:
    """The config of one part of a real model, as shipped in ``shipped_configs/`` (offline); None if not shipped."""
    name = _SHIPPED.get(model, {}).get(part)
    return json.loads((_SHIPPED_DIR / f"{name}.json").read_text()) if name else None


def model_index(model: str, cached_only: bool = False) -> dict[str, Any] | None:
    """A local folder's or a hub repository's ``model_index.json``; None for the tiny and shipped models.

    ``cached_only``: from the hub's local cache, never the network (a ModelNotFoundError when not there).
    """
    if model in TINY_MODELS or model in _SHIPPED:
        return None
    path = Path(location(model)).expanduser()
    if path.is_dir():
        file = path / "model_index.json"
        if not file.is_file():
            raise InputError(f"model folder {str(path)!r} has no model_index.json: it is not in diffusers layout")
        try:
            return json.loads(file.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"model folder {str(path)!r}: model_index.json is unreadable ({err})") from err
    if HUB_ID.match(model):
        return _hub_json(model, "model_index.json", cached_only)
    raise InputError(f"no configs for {model!r} here: cinescene knows {', '.join(TINY_MODELS)}, "
                     f"{', '.join(_SHIPPED)}, local diffusers folders and hub ids")


def present_parts(model: str) -> tuple[str, ...]:
    """The parts ``model`` has (of ``PARTS``), from its table or its model_index.json."""
    if model in TINY_MODELS:
        return tuple(p for p in PARTS if p in TINY_PARTS[model])
    if model in _SHIPPED:
        return tuple(p for p in PARTS if p in _SHIPPED[model])
    index = model_index(model) or {}
    # diffusers writes an absent optional component as [null, null].
    return tuple(p for p in PARTS if isinstance(index.get(p), list) and len(index[p]) == 2 and index[p][1])


def clean(config: dict[str, Any]) -> dict[str, Any]:
    """A config without diffusers' bookkeeping keys (``_class_name``, ``_diffusers_version``, ...)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def part_config(model: str, part: str) -> dict[str, Any]:
    """One part's config for ``model``: tiny, shipped, a local folder's, or the hub's (cached by the hub library).

    The one lookup every caller uses, so tiny, shipped and local models are read the same way everywhere.
    A part the model does not have (Wan2.2's image encoder) is an InputError naming it.
    """
    if part not in PARTS:
        raise ValueError(f"unknown model part {part!r}")
    if model in TINY_MODELS:
        if part not in TINY_PARTS[model]:
            raise InputError(f"the {model} model has no {part}")
        return dict(TINY_PARTS[model][part])
    model = location(model)
    if model in _SHIPPED:
        config = shipped_config(model, part)
        if config is None:
            raise InputError(f"{model} has no {part}")
    else:
        path = Path(model).expanduser()
        if path.is_dir():
            file = path / part / "config.json"
            if not file.is_file():
                raise InputError(f"model folder {str(path)!r} has no {part}/config.json")
            config = json.loads(file.read_text())
        elif HUB_ID.match(model):
            config = _hub_json(model, f"{part}/config.json")
        else:
            raise InputError(f"no configs for {model!r} here: cinescene knows {', '.join(TINY_MODELS)}, "
                             f"{', '.join(_SHIPPED)}, local diffusers folders and hub ids")
    return clean(config)


def configs(model: str) -> dict[str, dict[str, Any]]:
    """Every part's config for ``model``, for the parts it has."""
    return {part: part_config(model, part) for part in present_parts(model)}


def transformer_config(model: str) -> dict[str, Any]:
    """The transformer's config for ``model`` without loading weights (and offline for the known ids)."""
    return part_config(model, "transformer")


def _hub_json(model_id: str, filename: str, cached_only: bool = False) -> dict[str, Any]:
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(model_id, filename, local_files_only=cached_only)).read_text())
    except Exception as err:  # noqa: BLE001 - any hub failure means the same thing here
        text = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise ModelNotFoundError(
            f"no {filename} for {model_id!r}: not shipped with cinescene and the hub could not provide it ({text})"
        ) from err


def transformer_skeleton(model: str) -> torch.nn.Module:
    """The model's WanTransformer3DModel on the meta device: every module and shape, no memory."""
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    with init_empty_weights():
        return WanTransformer3DModel.from_config(transformer_config(model))


def fingerprint(config: Any) -> dict[str, int]:
    """The transformer dimensions an adapter depends on; equal fingerprints mean compatible adapters."""
    get = config.get if isinstance(config, dict) else lambda k: getattr(config, k)
    return {
        "inner_dim": int(get("num_attention_heads") * get("attention_head_dim")),
        "num_layers": int(get("num_layers")),
        "image_dim": int(get("image_dim") or 0),
        "text_dim": int(get("text_dim")),
    }
