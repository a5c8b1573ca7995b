"""Which Wan a model is (Wan2.1 I2V, Wan2.2 I2V A14B with two experts, Wan2.2 TI2V-5B) and its official defaults.

diffusers serves all three with ``WanImageToVideoPipeline``: Wan2.2 A14B adds ``transformer_2`` and
``boundary_ratio`` (the high-noise expert denoises timesteps t >= boundary_ratio * num_train_timesteps, the
low-noise expert the rest); TI2V-5B sets ``expand_timesteps`` (the first frame's latents are written into the
noisy latents, with timestep 0 on their tokens) over the Wan2.2 VAE. A folder says which by its
``model_index.json`` (``transformer_2``, ``boundary_ratio``, ``expand_timesteps``) and the VAE's 48 latent
channels; the hub ids and tiny models are known here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..settings import (
    HUB_480P,
    HUB_720P,
    HUB_WAN22_I2V,
    HUB_WAN22_TI2V,
    TINY,
    TINY_TI2V,
    TINY_WAN22,
    ModelDefaults,
)
from . import parts
from .tiny import TINY_WAN22_BOUNDARY

HIGH_NOISE, LOW_NOISE, SINGLE = "high_noise", "low_noise", "transformer"
# Which pipeline component each expert is (diffusers: `transformer` handles high noise, `transformer_2` low).
EXPERT_COMPONENTS = {HIGH_NOISE: "transformer", LOW_NOISE: "transformer_2", SINGLE: "transformer"}
WAN22_VAE_CHANNELS = 48  # the Wan2.2 VAE's z_dim (Wan2.1's is 16)
I2V_CLASS, T2V_CLASS = "WanImageToVideoPipeline", "WanPipeline"


@dataclass(frozen=True)
class Family:
    """What sampling and training need to know about a Wan model's structure."""

    name: str  # "wan2.1-i2v" | "wan2.2-i2v-a14b" | "wan2.2-ti2v-5b"
    label: str
    boundary_ratio: float | None = None  # two experts when set
    expand_timesteps: bool = False  # TI2V: first-frame latents in the noisy latents, per-token timesteps
    image_encoder: bool = True  # Wan2.1's CLIP image embedding in cross-attention

    @property
    def experts(self) -> tuple[str, ...]:
        return (HIGH_NOISE, LOW_NOISE) if self.boundary_ratio is not None else (SINGLE,)

    @property
    def two_experts(self) -> bool:
        return self.boundary_ratio is not None


WAN21 = Family("wan2.1-i2v", "Wan2.1 I2V 14B")
# Wan2.2 wan/configs/wan_i2v_A14B.py: boundary = 0.900; no CLIP (the config names none, and diffusers'
# convert script builds the A14B pipeline without image_encoder).
WAN22_I2V = Family("wan2.2-i2v-a14b", "Wan2.2 I2V A14B", boundary_ratio=0.9, image_encoder=False)
WAN22_TI2V = Family("wan2.2-ti2v-5b", "Wan2.2 TI2V-5B", expand_timesteps=True, image_encoder=False)

_KNOWN = {TINY: WAN21, HUB_480P: WAN21, HUB_720P: WAN21, HUB_WAN22_I2V: WAN22_I2V, HUB_WAN22_TI2V: WAN22_TI2V,
          TINY_WAN22: Family("wan2.2-i2v-a14b", "tiny Wan2.2 I2V (two experts)", boundary_ratio=TINY_WAN22_BOUNDARY,
                             image_encoder=False),
          TINY_TI2V: Family("wan2.2-ti2v-5b", "tiny Wan2.2 TI2V", expand_timesteps=True, image_encoder=False)}

# The official sampling defaults, from Wan2.2's own configs (github.com/Wan-Video/Wan2.2, wan/configs/):
# - wan_i2v_A14B.py: sample_steps = 40, sample_shift = 5.0, boundary = 0.900,
#   sample_guide_scale = (3.5, 3.5) "low noise, high noise"; shared_config.py: frame_num = 81, sample_fps = 16.
#   The size: generate.py's --size default '1280*720' (480*832 is supported too: --preset 480P).
# - wan_ti2v_5B.py: sample_steps = 50, sample_shift = 5.0, sample_guide_scale = 5.0, frame_num = 121,
#   sample_fps = 24; its 720P is 1280*704 (__init__.py SUPPORTED_SIZES['ti2v-5B']).
# The hub repositories' schedulers carry diffusers' convert-script flow_shift (3.0 for I2V A14B, 5.0 for TI2V);
# cinescene samples with Wan's own sample_shift, as it does for Wan2.1 at 720P.
OFFICIAL_DEFAULTS = {
    WAN21.name: ModelDefaults(),
    WAN22_I2V.name: ModelDefaults(preset="720P", steps=40, frames=81, guidance=3.5, guidance_2=3.5, boundary=0.9,
                                  shift=5.0, fps=16),
    WAN22_TI2V.name: ModelDefaults(preset="704P", steps=50, frames=121, guidance=5.0, shift=5.0, fps=24),
}


def family(model: str) -> Family:
    """The family of a named model, hub id or folder, from its model_index.json (and a folder's VAE config).

    Never the network: a hub id cinescene does not ship is read from the hub's local cache, and a
    ModelNotFoundError says when it is not there.
    """
    if model in _KNOWN:
        return _KNOWN[model]
    index = parts.model_index(model, cached_only=True) or {}
    folder = Path(parts.location(model)).expanduser()
    vae = parts.part_config(model, "vae") if folder.is_dir() and "vae" in parts.present_parts(model) else {}
    return family_of(index, vae, model)


def family_of_pipeline(pipe: Any) -> Family:
    """The family of a loaded pipeline, from its own config (what the denoising loop reads)."""
    index = {"_class_name": I2V_CLASS, "boundary_ratio": pipe.config.boundary_ratio,
             "expand_timesteps": pipe.config.expand_timesteps,
             "transformer_2": [None, "WanTransformer3DModel" if pipe.transformer_2 is not None else None],
             "image_encoder": [None, type(pipe.image_encoder).__name__ if pipe.image_encoder is not None else None]}
    # A pipeline may be built without its VAE (the adapter benchmarks time the transformer alone).
    vae = {"z_dim": pipe.vae.config.z_dim} if getattr(pipe, "vae", None) is not None else {}
    found = family_of(index, vae, "the loaded pipeline")
    return replace(found, image_encoder=pipe.image_encoder is not None)


def family_of(index: dict[str, Any], vae: dict[str, Any], where: str) -> Family:
    """The family a pipeline's model_index.json and VAE config describe; an InputError for what cinescene cannot run.

    Wan2.2 TI2V-5B's repository names ``WanPipeline`` (it does text-to-video too); it is loaded as a
    ``WanImageToVideoPipeline``, as its model card does for image-to-video.
    """
    class_name = index.get("_class_name")
    two = bool((index.get("transformer_2") or [None, None])[-1]) and index.get("boundary_ratio") is not None
    ti2v = bool(index.get("expand_timesteps")) or vae.get("z_dim") == WAN22_VAE_CHANNELS
    if class_name not in (I2V_CLASS, T2V_CLASS) or (class_name == T2V_CLASS and not ti2v):
        raise InputError(f"model {where!r} holds a {class_name}, not a {I2V_CLASS} (Wan2.1 I2V or Wan2.2 I2V) "
                         "or Wan2.2 TI2V")
    if two and ti2v:
        raise InputError(f"model {where!r} has two experts and the Wan2.2 VAE: no Wan cinescene knows is both")
    if two:
        return Family(WAN22_I2V.name, WAN22_I2V.label, boundary_ratio=float(index["boundary_ratio"]),
                      image_encoder=bool((index.get("image_encoder") or [None, None])[-1]))
    if ti2v:
        return WAN22_TI2V
    return WAN21


def official_defaults(fam: Family) -> ModelDefaults:
    """The sampling defaults of a family, with the model's own boundary (a folder may state another)."""
    defaults = OFFICIAL_DEFAULTS[fam.name]
    if fam.two_experts and fam.boundary_ratio != defaults.boundary:
        defaults = replace(defaults, boundary=fam.boundary_ratio)
    return defaults
