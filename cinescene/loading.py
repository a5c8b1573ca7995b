"""The one place that builds or loads a Wan image-to-video pipeline, and the process-wide cache that holds it.

Three sources, one result (:class:`LoadedModel`):

* ``tiny`` (Wan2.1 I2V), ``tiny-wan22`` (two experts, as Wan2.2 I2V A14B) and ``tiny-ti2v`` (the Wan2.2
  VAE, as TI2V-5B): the real classes with tiny configs (``architecture``) and seeded random weights, built
  in memory in well under a second. Tests and CI use them; their pictures are noise, everything else
  (shapes, adapters, training) is real.
* a Hugging Face hub id (``Wan-AI/Wan2.1-I2V-14B-480P-Diffusers``, ``Wan-AI/Wan2.2-I2V-A14B-Diffusers``, ...).
* a local folder in diffusers layout (``model_index.json`` at its root).

Every one of them is a ``WanImageToVideoPipeline``: diffusers runs Wan2.2's two experts and TI2V's
first-frame latents itself (``transformer_2``, ``boundary_ratio``, ``expand_timesteps``).

Where the weights go afterwards (device, dtype, offloading, fp8) is ``placement``;
attention backends and compilation are ``speed``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import architecture, context_parallel, experts, placement
from .errors import InputError, ModelNotFoundError
from .settings import (
    HUB_480P,
    MAX_TEXT_TOKENS,
    MEMORY_CHOICES,
    PRESETS,
    TINY,
    TINY_MODELS,
    TINY_TI2V,
    TINY_WAN22,
    TOY,
    ModelDefaults,
    ModelSpec,
)
from .slots import SlotState


@dataclass
class LoadedModel:
    """A ready pipeline plus what the rest of cinescene needs to know about it."""

    pipe: Any  # diffusers.WanImageToVideoPipeline (kept untyped so importing this module stays cheap)
    spec: ModelSpec
    source: str  # "tiny" | "toy" | "hub" | "local"
    model_id: str  # hub id, absolute folder path, "toy", or a tiny model's name
    device: torch.device
    dtype: torch.dtype  # transformer compute dtype
    defaults: ModelDefaults
    preset: architecture.PresetChoice = field(default_factory=lambda: architecture.PresetChoice("480P", "default"))
    slots: SlotState = field(default_factory=SlotState, repr=False, compare=False)
    # One generation at a time per pipeline: a request sets scheduler shift and
    # adapter strengths on the shared pipeline, so requests must not interleave.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    notes: list[str] = field(default_factory=list)  # choices made at load time (memory auto, ...)
    parallel: context_parallel.World | None = None  # the processes one shot is split over (--parallel)
    family: architecture.Family = architecture.WAN21

    @property
    def is_tiny(self) -> bool:
        return self.source == "tiny"

    @property
    def two_experts(self) -> bool:
        return self.family.two_experts

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of: the VAE's spatial stride times the patch (16 or 32)."""
        return int(self.pipe.vae_scale_factor_spatial * self.pipe.transformer.config.patch_size[1])

    def fingerprint(self) -> dict[str, int]:
        return architecture.fingerprint(self.pipe.transformer.config)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "source": self.source,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "memory": self.spec.memory,
            "vae_tiling": self.spec.vae_tiling,
            "fp8": self.spec.fp8,
            "attention": self.spec.attention,
            "compile": self.spec.compile,
            "transformer": self.spec.transformer,
            "preset": self.preset.name,
            "preset_source": self.preset.source,
            "family": self.family.name,
            "experts": list(self.family.experts),
            "boundary_ratio": self.pipe.config.boundary_ratio,
            "expand_timesteps": bool(self.pipe.config.expand_timesteps),
            "notes": self.notes,
            "parallel": self.parallel.describe() if self.parallel else None,
        }


def auto_model() -> str:
    """The model to use when none is named: the real 480P model on a GPU, the shipped ``toy`` model otherwise.

    A CPU machine must never start a 60 GB download it cannot run anyway; the toy model makes real
    (small, synthetic) pictures in seconds there.
    """
    return HUB_480P if placement.cuda_available() else TOY


def build_tiny_pipeline(seed: int = 0, model: str = TINY) -> Any:
    """A WanImageToVideoPipeline of the real classes with tiny, seeded random weights.

    ``model``: ``tiny`` (Wan2.1 I2V: CLIP image encoder), ``tiny-wan22`` (two experts and a boundary, no image
    encoder) or ``tiny-ti2v`` (the Wan2.2 VAE, ``expand_timesteps``). Deterministic for a given seed and
    independent of the caller's global RNG.
    """
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import (
        ByT5Tokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
    )

    if model not in TINY_MODELS:
        raise ValueError(f"no tiny model named {model!r}: {', '.join(TINY_MODELS)}")
    configs = architecture.TINY_PARTS[model]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = WanTransformer3DModel(**configs["transformer"])
        vae = AutoencoderKLWan(**configs["vae"])
        text_encoder = UMT5EncoderModel(UMT5Config(**configs["text_encoder"]))
        image_encoder = CLIPVisionModel(CLIPVisionConfig(**configs["image_encoder"])) if model == TINY else None
        transformer_2 = WanTransformer3DModel(**configs["transformer_2"]) if model == TINY_WAN22 else None
    image_processor = None
    if image_encoder is not None:
        side = architecture.TINY_IMAGE_ENCODER["image_size"]
        image_processor = CLIPImageProcessor(crop_size={"height": side, "width": side}, size={"shortest_edge": side})
    # The real Wan I2V repos ship UniPC in flow mode; the tiny models use the
    # same scheduler so sampling code paths are identical.
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, num_train_timesteps=1000
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=ByT5Tokenizer(),  # needs no vocabulary files
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        image_processor=image_processor,
        image_encoder=image_encoder,
        transformer=transformer,
        transformer_2=transformer_2,
        boundary_ratio=architecture.TINY_WAN22_BOUNDARY if model == TINY_WAN22 else None,
        expand_timesteps=model == TINY_TI2V,
    )
    for module in (transformer, transformer_2, vae, text_encoder, image_encoder):
        if module is not None:
            module.eval()
    return pipe


def load_model(spec: ModelSpec) -> LoadedModel:
    """Build or load the pipeline ``spec`` names and place it on its device."""
    if spec.memory not in MEMORY_CHOICES:
        raise InputError(f"unknown memory mode {spec.memory!r}: choose one of {', '.join(MEMORY_CHOICES)}")
    world = context_parallel.start(spec) if context_parallel.check_spec(spec) > 1 else None
    device = world.device if world else placement.resolve_device(spec.device)
    notes: list[str] = []
    if spec.memory == "auto":
        spec = placement.auto_memory(spec, device, notes)
    if spec.model in TINY_MODELS:
        pipe = build_tiny_pipeline(spec.seed, spec.model)
        source, model_id = "tiny", spec.model
    else:
        # The toy model is a local diffusers folder like any other; only its name is special.
        source, model_id = _classify(architecture.location(spec.model))
        pipe = _from_pretrained(model_id, source, device)
        if spec.model == TOY:
            source, model_id = "toy", TOY  # records and sidecars name it as users do
    pipe.set_progress_bar_config(disable=True)  # cinescene reports progress through its own callback
    family = architecture.family_of_pipeline(pipe)
    if spec.transformer:
        if family.two_experts:
            raise InputError(f"{spec.model} has two experts; a fine-tuned transformer folder (--transformer) "
                             "replaces one transformer, so it is for one-expert models only")
        pipe.transformer = load_transformer(spec.transformer, pipe.transformer, device)
        model_id = f"{model_id}+{Path(spec.transformer).name}"
    if spec.fp8:
        for module in experts.experts(pipe).values():
            placement.enable_fp8_storage(module, device)
    placement.place(pipe, spec, device)
    # The loaded pipeline's own family decides, also for a hub id whose files were not readable before loading.
    preset = architecture.model_preset(spec.model, spec.preset, family)
    if preset.source.startswith("default"):
        notes.append(f"{spec.model} does not say whether it is a 480P or a 720P model: using 480P sizes and shift "
                     f"{PRESETS['480P'].shift} (pass --preset 720P for a 720P model)")
    model = LoadedModel(
        pipe=pipe,
        spec=spec,
        source=source,
        model_id=model_id,
        device=device,
        dtype=pipe.transformer.dtype,
        defaults=architecture.defaults_for(spec.model, spec.preset, family),
        preset=preset,
        notes=notes,
        parallel=world,
        family=family,
    )
    from . import speed

    speed.prepare_engine(model.pipe, model.slots, spec)
    if world:
        context_parallel.enable(model.pipe, model.slots, spec, world)  # after the attention backend is set
    return model


def text_length(pipe: Any) -> int:
    """How many prompt tokens the model reads: its tokenizer's ``model_max_length``, at most Wan's 512.

    Wan2.1 pads every prompt to 512 T5 tokens, the length it was trained with. The toy model's tokenizer
    says 32: its captions are at most 24 tokens, and 490 identical padding keys beside them would drown the
    few that say where the camera goes.
    """
    return min(MAX_TEXT_TOKENS, int(getattr(pipe.tokenizer, "model_max_length", MAX_TEXT_TOKENS)))


def is_transformer_folder(path: str | os.PathLike[str]) -> bool:
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("_class_name") == "WanTransformer3DModel"
    except ValueError:
        return False


def load_transformer(folder: str, base: Any, device: torch.device) -> Any:
    """A fine-tuned transformer folder (what full fine-tuning writes), checked against the base it replaces."""
    from diffusers import WanTransformer3DModel

    if not is_transformer_folder(folder):
        raise InputError(f"{folder} is not a WanTransformer3DModel folder (no config.json naming that class)")
    if architecture.fingerprint(transformer_config_of(folder)) != architecture.fingerprint(base.config):
        raise InputError(f"the transformer in {folder} has other dimensions than the base model's")
    return WanTransformer3DModel.from_pretrained(folder, torch_dtype=placement.compute_dtype(device)).eval()


def transformer_config_of(folder: str) -> dict[str, Any]:
    return json.loads((Path(folder) / "config.json").read_text())


_cache_lock = threading.Lock()
_cached: LoadedModel | None = None


def get_model(spec: ModelSpec) -> LoadedModel:
    """The process-wide pipeline: loaded once, replaced only when a different spec is asked for.

    One slot on purpose: two 14B pipelines do not fit on one GPU, so asking for
    another model releases the previous one first.
    """
    global _cached
    with _cache_lock:
        if _cached is not None and _cached.spec == spec:
            return _cached
        # The checks that need no loading come first: a mistyped folder or id must not cost the loaded model.
        if spec.memory not in MEMORY_CHOICES:
            raise InputError(f"unknown memory mode {spec.memory!r}: choose one of {', '.join(MEMORY_CHOICES)}")
        context_parallel.check_spec(spec)
        if spec.model not in TINY_MODELS:
            _classify(architecture.location(spec.model))
        _cached = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        _cached = load_model(spec)
        return _cached


def clear_cache() -> None:
    global _cached
    with _cache_lock:
        _cached = None


def _classify(model: str) -> tuple[str, str]:
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(f"model path {model!r} is a file; give the folder that holds model_index.json")
        index = path / "model_index.json"
        if not index.is_file():
            raise InputError(f"model folder {str(path)!r} has no model_index.json: it is not in diffusers layout")
        try:
            data = json.loads(index.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"model folder {str(path)!r}: model_index.json is unreadable ({err})") from err
        vae = path / "vae" / "config.json"
        try:
            vae_config = json.loads(vae.read_text()) if vae.is_file() else {}
        except (OSError, ValueError) as err:
            raise InputError(f"model folder {str(path)!r}: vae/config.json is unreadable ({err})") from err
        architecture.family_of(data, vae_config, str(path))  # refuses pipelines cinescene cannot run
        return "local", str(path.resolve())
    if architecture.HUB_ID.match(model):
        return "hub", model
    raise InputError(f"model {model!r} is neither an existing folder nor a hub id of the form org/name, nor "
                     "'toy' or 'tiny'")


def _from_pretrained(model_id: str, source: str, device: torch.device) -> Any:
    import transformers
    from diffusers import WanImageToVideoPipeline
    from diffusers.utils import logging as diffusers_logging
    from huggingface_hub.constants import HF_HUB_CACHE

    # Their loading bars would tear cinescene's own progress bars (and say nothing a user needs).
    diffusers_logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    compute = placement.compute_dtype(device)
    # The VAE and the CLIP image encoder stay in fp32 as the Wan authors and the
    # diffusers docs recommend: bf16 there costs visible quality for little memory.
    dtypes = {"default": compute, "vae": torch.float32, "image_encoder": torch.float32}
    try:
        return WanImageToVideoPipeline.from_pretrained(model_id, dtype=dtypes)
    except (OSError, ValueError, ConnectionError) as err:
        if source in ("local", "toy"):
            raise InputError(f"could not load the model folder {model_id!r}: {_first_line(err)}") from err
        raise ModelNotFoundError(
            f"could not load model {model_id!r}: it is not a local folder, not in the Hugging Face cache "
            f"({HF_HUB_CACHE}), and {_explain_hub_failure(err)}. Download it first (hf download {model_id}) "
            "or pass a local folder with --model PATH; to try cinescene without weights use --model tiny."
        ) from err


def _first_line(err: BaseException, limit: int = 200) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _explain_hub_failure(err: BaseException) -> str:
    """Tell "no network" apart from "the hub said no" by walking the exception chain."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:  # the hub library's own reading of HF_HUB_OFFLINE
        return "the hub is switched off here (HF_HUB_OFFLINE is set)"
    link: BaseException | None = err
    while link is not None:
        name = type(link).__name__
        if any(word in name for word in ("Connect", "Timeout", "gaierror", "Offline")):
            return f"the hub is unreachable from here ({_first_line(link, 80)})"
        if any(word in name for word in ("RepositoryNotFound", "GatedRepo", "RevisionNotFound")):
            return f"the hub refused it ({_first_line(link)})"
        link = link.__cause__ or link.__context__
    return f"the hub did not provide it ({_first_line(err)})"
