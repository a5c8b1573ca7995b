"""What the models look like: tiny and toy configs, the real models' shipped configs, families, defaults.

Everything here is knowledge about an architecture, read without loading a weight: ``loading`` builds
pipelines from it, ``budget`` counts parameters and FLOPs with it, ``adapters`` checks LoRA files against
it, the sampler and trainer ask it which experts a model has.

* ``tiny``: the tiny models' configs (``tiny``, ``tiny-wan22``, ``tiny-ti2v``) and the toy model's.
* ``parts``: one part's config for any model (tiny, shipped, local folder, hub), fingerprints.
* ``family``: Wan2.1 I2V, Wan2.2 I2V A14B (two experts) or Wan2.2 TI2V-5B, and each one's official defaults.
* ``presets``: which resolution a model is for, and the defaults a shot starts from.
"""

from .family import (
    EXPERT_COMPONENTS,
    HIGH_NOISE,
    LOW_NOISE,
    SINGLE,
    WAN21,
    WAN22_I2V,
    WAN22_TI2V,
    Family,
    family,
    family_of,
    family_of_pipeline,
    official_defaults,
)
from .parts import (
    HUB_ID,
    PARTS,
    SAMPLING_FILE,
    SHIPPED_MODELS,
    TOY_FOLDER,
    clean,
    configs,
    fingerprint,
    folder_sampling,
    location,
    model_index,
    part_config,
    present_parts,
    shipped_config,
    transformer_config,
    transformer_skeleton,
)
from .presets import PresetChoice, defaults_for, model_preset
from .tiny import (
    TINY_CONFIGS,
    TINY_IMAGE_ENCODER,
    TINY_PARTS,
    TINY_TEXT_ENCODER,
    TINY_TI2V_TRANSFORMER,
    TINY_TI2V_VAE,
    TINY_TRANSFORMER,
    TINY_VAE,
    TINY_WAN22_BOUNDARY,
    TINY_WAN22_TRANSFORMER,
    TOY_CONFIGS,
    TOY_IMAGE_ENCODER,
    TOY_TEXT_ENCODER,
    TOY_TRANSFORMER,
    TOY_VAE,
)

__all__ = [
    "EXPERT_COMPONENTS", "Family", "HIGH_NOISE", "HUB_ID", "LOW_NOISE", "PARTS", "PresetChoice", "SAMPLING_FILE",
    "SHIPPED_MODELS", "SINGLE", "TINY_CONFIGS", "TINY_IMAGE_ENCODER", "TINY_PARTS", "TINY_TEXT_ENCODER",
    "TINY_TI2V_TRANSFORMER", "TINY_TI2V_VAE", "TINY_TRANSFORMER", "TINY_VAE", "TINY_WAN22_BOUNDARY",
    "TINY_WAN22_TRANSFORMER", "TOY_CONFIGS", "TOY_FOLDER", "TOY_IMAGE_ENCODER", "TOY_TEXT_ENCODER",
    "TOY_TRANSFORMER", "TOY_VAE", "WAN21", "WAN22_I2V", "WAN22_TI2V", "clean", "configs", "defaults_for", "family",
    "family_of", "family_of_pipeline", "fingerprint", "folder_sampling", "location", "model_index", "model_preset",
    "official_defaults", "part_config", "present_parts", "shipped_config", "transformer_config",
    "transformer_skeleton",
]
