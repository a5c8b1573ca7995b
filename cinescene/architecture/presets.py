"""Which resolution preset a model is made for, and the sampling defaults it starts from."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CinesceneError, InputError
from ..settings import PRESETS, TINY_MODELS, ModelDefaults
from .family import Family, official_defaults
from .family import family as model_family
from .parts import SAMPLING_FILE, folder_sampling, location


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


def model_preset(model: str, explicit: str | None = None, family: Family | None = None) -> PresetChoice:
    """Which preset a model is: an explicit ``--preset`` first, then what the model itself says.

    The two Wan2.1 I2V 14B repositories are converted by one diffusers script and ship the same configs
    (transformer, CLIP image encoder and processor, UniPC with flow_shift 3.0), and diffusers drops
    ``_name_or_path`` when it saves: no config names the resolution. What can: the hub id; a folder in the
    hub cache (``models--Wan-AI--Wan2.1-I2V-14B-720P-Diffusers/snapshots/<rev>``); a ``_name_or_path`` that
    older libraries wrote into a saved component's config (the source it was loaded from); and, weakest,
    the folder's own name. Otherwise 480P, said so, and ``--preset`` settles it. Wan2.2 models have one
    official size each (``family``: the loaded pipeline's, when known).
    """
    if explicit:
        if explicit not in PRESETS:
            raise InputError(f"unknown preset {explicit!r}: choose one of {', '.join(PRESETS)}")
        return PresetChoice(explicit, "--preset")
    if model in TINY_MODELS:
        return PresetChoice("preview", "tiny model")
    if stated := folder_sampling(model).get("preset"):
        return PresetChoice(stated, f"the model folder's {SAMPLING_FILE}")
    family_preset = _official(model, family).preset
    if family_preset != ModelDefaults().preset:  # Wan2.2: one official size per model, not one per repository
        return PresetChoice(family_preset, "the model family's official size")
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


def defaults_for(model_id: str, preset: str | None = None, family: Family | None = None) -> ModelDefaults:
    """The sampling defaults a model starts from (its family's official ones), at its preset.

    ``family``: the loaded pipeline's (otherwise read from the model's files, offline).
    """
    choice = model_preset(model_id, preset, family)
    official = _official(model_id, family)
    if model_id in TINY_MODELS:
        # Small enough for a CPU to answer in seconds; the pictures are noise anyway.
        return dataclasses.replace(official, preset=choice.name, steps=8, frames=17)
    stated = {k: v for k, v in folder_sampling(model_id).items() if k in ("steps", "frames", "guidance")}
    return dataclasses.replace(official, preset=choice.name, **stated)


def _official(model: str, family: Family | None) -> ModelDefaults:
    if family is not None:
        return official_defaults(family)
    # Defaults are asked for before a model loads (to fill the CLI's and the app's forms): a model whose files
    # cannot be read yet (a mistyped name, a hub id not in the cache offline) starts from Wan2.1's, and the
    # load that follows reports what is wrong with it.
    try:
        return official_defaults(model_family(model))
    except CinesceneError:
        return ModelDefaults()
