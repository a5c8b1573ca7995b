"""What the models look like: the tiny configs, the real models' shipped configs, fingerprints, defaults.

Everything here is knowledge about an architecture, read without loading a
weight: ``loading`` builds pipelines from it, ``budget`` counts parameters and
FLOPs with it, ``adapters`` checks LoRA files against it. The real
Wan2.1-I2V-14B configs ship in ``shipped_configs/`` so all of that works
offline for the known hub ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import InputError, ModelNotFoundError
from .settings import HUB_480P, HUB_720P, PRESETS, TINY, TOY, ModelDefaults

PARTS = ("transformer", "vae", "text_encoder", "image_encoder")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# Tiny configs: every dimension as small as the classes allow while keeping the
# structure of the real model (image cross-attention, 36 input channels, 4x8x8
# VAE stride, RoPE long enough for 720P latents).
TINY_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=36,  # 16 noisy latents + 4 mask + 16 first-frame latents, as in the real I2V model
    out_channels=16,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    image_dim=16,  # = TINY_IMAGE_ENCODER hidden_size
    added_kv_proj_dim=24,  # = heads x head_dim, as 5120 is in the real model
    rope_max_seq_len=1024,
)
TINY_VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
TINY_TEXT_ENCODER = dict(
    vocab_size=384, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=8
)
TINY_IMAGE_ENCODER = dict(
    hidden_size=16,
    projection_dim=16,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=32,
    patch_size=4,
)
TINY_CONFIGS = {"transformer": TINY_TRANSFORMER, "vae": TINY_VAE, "text_encoder": TINY_TEXT_ENCODER,
                "image_encoder": TINY_IMAGE_ENCODER}

# Toy configs: small enough to train on two CPU cores in under 45 minutes (scripts/train_toy_model.py), large
# enough to learn toy footage at 64 x 112. The same structure as the real model: image cross-attention, 36 input
# channels, the VAE's 4x temporal and 8x spatial strides, 2x2 patches. The trained folder's own config files
# (cinescene/toy/model) are what loading reads; these are what the script builds it from.
TOY_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=36,
    out_channels=16,
    text_dim=64,  # = TOY_TEXT_ENCODER d_model
    freq_dim=256,
    ffn_dim=512,
    num_layers=6,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    image_dim=64,  # = TOY_IMAGE_ENCODER hidden_size
    added_kv_proj_dim=128,  # = heads x head_dim
    rope_max_seq_len=1024,
)
# is_residual: Wan2.2's VAE blocks (the same class), whose parameter-free shortcuts (pixels folded into channels
# and averaged down, duplicated back up) give a fresh VAE a path for colour from its first step: measured on
# held-out toy frames after 600 steps at the same settings, 17.9 dB PSNR against 15.3 dB with Wan2.1's blocks.
# The latents are Wan2.1's: 16 channels, 4x temporal and 8x spatial strides.
TOY_VAE = dict(base_dim=16, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True],
               is_residual=True)
# vocab_size: one token per word of the toy captions (toy.base_model.vocabulary; a word-level tokenizer).
TOY_TEXT_ENCODER = dict(vocab_size=40, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.0)
TOY_IMAGE_ENCODER = dict(hidden_size=64, projection_dim=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, image_size=32, patch_size=4)
TOY_CONFIGS = {"transformer": TOY_TRANSFORMER, "vae": TOY_VAE, "text_encoder": TOY_TEXT_ENCODER,
               "image_encoder": TOY_IMAGE_ENCODER}

_SHIPPED_DIR = Path(__file__).resolve().parent / "shipped_configs"
TOY_FOLDER = Path(__file__).resolve().parent / "toy" / "model"
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
_SHIPPED = {HUB_480P: "wan2.1-i2v-14b", HUB_720P: "wan2.1-i2v-14b"}  # one architecture, two resolutions


def shipped_config(model: str, part: str) -> dict[str, Any] | None:
    """The config of one part of a real model, as shipped in ``shipped_configs/`` (offline); None if not shipped."""
    if model not in _SHIPPED:
        return None
    return json.loads((_SHIPPED_DIR / f"{_SHIPPED[model]}.{part}.json").read_text())


def clean(config: dict[str, Any]) -> dict[str, Any]:
    """A config without diffusers' bookkeeping keys (``_class_name``, ``_diffusers_version``, ...)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def part_config(model: str, part: str) -> dict[str, Any]:
    """One part's config for ``model``: tiny, shipped, a local folder's, or the hub's (transformer only, cached).

    The one lookup every caller uses, so tiny, shipped and local models are read the same way everywhere.
    """
    if part not in PARTS:
        raise ValueError(f"unknown model part {part!r}")
    if model == TINY:
        return dict(TINY_CONFIGS[part])
    model = location(model)
    config = shipped_config(model, part)
    if config is None:
        path = Path(model).expanduser()
        if path.is_dir():
            file = path / part / "config.json"
            if not file.is_file():
                raise InputError(f"model folder {str(path)!r} has no {part}/config.json")
            config = json.loads(file.read_text())
        elif HUB_ID.match(model):
            config = _hub_config(model, part)
        else:
            raise InputError(f"no configs for {model!r} here: cinescene knows tiny, {HUB_480P}, {HUB_720P}, "
                             "local diffusers folders and hub ids")
    return clean(config)


def configs(model: str) -> dict[str, dict[str, Any]]:
    """Every part's config for ``model``."""
    return {part: part_config(model, part) for part in PARTS}


def transformer_config(model: str) -> dict[str, Any]:
    """The transformer's config for ``model`` without loading weights (and offline for the known ids)."""
    return part_config(model, "transformer")


def _hub_config(model_id: str, part: str) -> dict[str, Any]:
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(model_id, f"{part}/config.json")).read_text())
    except Exception as err:  # noqa: BLE001 - any hub failure means the same thing here
        text = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise ModelNotFoundError(
            f"no {part} config for {model_id!r}: not shipped with cinescene and the hub could not provide it ({text})"
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


@dataclass(frozen=True)
class PresetChoice:
    """The resolution a model was made for, and what said so (it goes into every record)."""

    name: str
    source: str


RESOLUTION = re.compile(r"(?<![0-9])(480|720)p(?![a-z0-9])", re.IGNORECASE)
HUB_CACHE_FOLDER = re.compile(r"^models--(.+?)--(.+)$")  # huggingface_hub's cache: models--{org}--{name}
# Files whose ``_name_or_path`` (written by older diffusers and transformers versions) names where a
# component was loaded from: a hub id or a hub-cache path, which carry the repository's name.
NAMED_FILES = ("model_index.json", "transformer/config.json", "image_encoder/config.json",
               "text_encoder/config.json", "vae/config.json", "image_processor/preprocessor_config.json",
               "scheduler/scheduler_config.json")


def _preset_in(text: str) -> str | None:
    match = RESOLUTION.search(text)
    return f"{match.group(1)}P" if match else None


def model_preset(model: str, explicit: str | None = None) -> PresetChoice:
    """Which preset a model is: an explicit ``--preset`` first, then what the model itself says.

    The two Wan2.1 I2V 14B repositories are converted by one diffusers script and ship the same configs
    (transformer, CLIP image encoder and processor, UniPC with flow_shift 3.0), and diffusers drops
    ``_name_or_path`` when it saves: no config names the resolution. What can: the hub id; a folder in the
    hub cache (``models--Wan-AI--Wan2.1-I2V-14B-720P-Diffusers/snapshots/<rev>``); a ``_name_or_path`` that
    older libraries wrote into a saved component's config (the source it was loaded from); and, weakest,
    the folder's own name. Otherwise 480P, said so, and ``--preset`` settles it.
    """
    if explicit:
        if explicit not in PRESETS:
            raise InputError(f"unknown preset {explicit!r}: choose one of {', '.join(PRESETS)}")
        return PresetChoice(explicit, "--preset")
    if model == TINY:
        return PresetChoice("preview", "tiny model")
    if stated := folder_sampling(model).get("preset"):
        return PresetChoice(stated, f"the model folder's {SAMPLING_FILE}")
    path = Path(location(model)).expanduser()
    if not path.is_dir():
        found = _preset_in(model)
        return PresetChoice(found, "hub id") if found else PresetChoice("480P", "default (the hub id does not say)")
    folder = path.resolve()
    for ancestor in (folder, *folder.parents):
        cached = HUB_CACHE_FOLDER.match(ancestor.name)
        if cached and (found := _preset_in(cached.group(2))):
            return PresetChoice(found, f"hub cache ({cached.group(1)}/{cached.group(2)})")
    for name in NAMED_FILES:
        try:
            origin = json.loads((folder / name).read_text()).get("_name_or_path")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(origin, str) and (found := _preset_in(origin)):
            return PresetChoice(found, f"{name} (_name_or_path {origin})")
    found = _preset_in(folder.name)
    if found:
        return PresetChoice(found, "folder name")
    return PresetChoice("480P", "default (the folder does not say: pass --preset 720P for a 720P model)")


def defaults_for(model_id: str, preset: str | None = None) -> ModelDefaults:
    """The sampling defaults a model starts from (the official ones for Wan2.1 I2V), at its preset."""
    choice = model_preset(model_id, preset)
    if model_id == TINY:
        # Small enough for a CPU to answer in seconds; the pictures are noise anyway.
        return ModelDefaults(preset=choice.name, steps=8, frames=17)
    stated = {k: v for k, v in folder_sampling(model_id).items() if k in ("steps", "frames", "guidance")}
    return ModelDefaults(preset=choice.name, **stated)
