"""The one place that builds or loads a Wan2.1 I2V pipeline.

Three sources, one result (:class:`LoadedModel`):

* ``tiny``: the real classes with tiny configs and seeded random weights, built
  in memory in well under a second. Tests, CI and CPU-only machines use it; its
  pictures are noise, everything else (shapes, adapters, training) is real.
* a Hugging Face hub id (``Wan-AI/Wan2.1-I2V-14B-480P-Diffusers``, ...).
* a local folder in diffusers layout (``model_index.json`` at its root).
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import HUB_480P, HUB_720P, MEMORY_MODES, TINY, ModelDefaults, ModelSpec
from .errors import InputError, ModelNotFoundError
from .slots import SlotState

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# Tiny configs: every dimension as small as the classes allow while keeping the
# structure of the real model (image cross-attention, 36 input channels, 4x8x8
# VAE stride, RoPE long enough for 720P latents). See also model_configs/ for
# the real 14B configs.
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


@dataclass
class LoadedModel:
    """A ready pipeline plus what the rest of cinescene needs to know about it."""

    pipe: Any  # diffusers.WanImageToVideoPipeline (kept untyped so importing this module stays cheap)
    spec: ModelSpec
    source: str  # "tiny" | "hub" | "local"
    model_id: str  # hub id, absolute folder path, or "tiny"
    device: torch.device
    dtype: torch.dtype  # transformer compute dtype
    defaults: ModelDefaults
    slots: SlotState = field(default_factory=SlotState, repr=False, compare=False)
    # One generation at a time per pipeline: a request sets scheduler shift and
    # adapter strengths on the shared pipeline, so requests must not interleave.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    notes: list[str] = field(default_factory=list)  # choices made at load time (memory auto, ...)

    @property
    def is_tiny(self) -> bool:
        return self.source == "tiny"

    def fingerprint(self) -> dict[str, int]:
        return fingerprint(self.pipe.transformer.config)

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
            "notes": self.notes,
        }


def fingerprint(config: Any) -> dict[str, int]:
    """The transformer dimensions an adapter depends on; equal fingerprints mean compatible adapters."""
    get = config.get if isinstance(config, dict) else lambda k: getattr(config, k)
    return {
        "inner_dim": int(get("num_attention_heads") * get("attention_head_dim")),
        "num_layers": int(get("num_layers")),
        "image_dim": int(get("image_dim") or 0),
        "text_dim": int(get("text_dim")),
    }


def cuda_available() -> bool:
    return torch.cuda.is_available()


def auto_model() -> str:
    """The model to use when none is named: the real 480P model on a GPU, ``tiny`` otherwise.

    A CPU machine must never start a 60 GB download it cannot run anyway.
    """
    return HUB_480P if cuda_available() else TINY


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not cuda_available():
        raise InputError(f"device {name!r} asked for, but this machine has no CUDA device")
    return device


def compute_dtype(device: torch.device) -> torch.dtype:
    """What the transformer computes in: bf16 on a GPU, fp32 on a CPU (bf16 matmuls are slow there)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def enable_fp8_storage(transformer: Any, device: torch.device) -> None:
    """Store the transformer's weights in fp8 and compute in the usual dtype (once per transformer).

    Norms and embeddings stay as they are (diffusers' skip list); LoRA layers added later are not hooked.
    """
    if getattr(transformer, "_cinescene_fp8", False):
        return
    transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype(device))
    transformer._cinescene_fp8 = True


def defaults_for(model_id: str) -> ModelDefaults:
    if model_id == TINY:
        # Small enough for a CPU to answer in seconds; the pictures are noise anyway.
        return ModelDefaults(preset="preview", steps=8, frames=17)
    if model_id == HUB_720P or "720p" in model_id.lower():
        return ModelDefaults(preset="720P")
    return ModelDefaults(preset="480P")


def build_tiny_pipeline(seed: int = 0) -> Any:
    """A WanImageToVideoPipeline of the real classes with tiny, seeded random weights.

    Deterministic for a given seed and independent of the caller's global RNG.
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

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = WanTransformer3DModel(**TINY_TRANSFORMER)
        vae = AutoencoderKLWan(**TINY_VAE)
        text_encoder = UMT5EncoderModel(UMT5Config(**TINY_TEXT_ENCODER))
        image_encoder = CLIPVisionModel(CLIPVisionConfig(**TINY_IMAGE_ENCODER))
    side = TINY_IMAGE_ENCODER["image_size"]
    image_processor = CLIPImageProcessor(crop_size={"height": side, "width": side}, size={"shortest_edge": side})
    # The real Wan2.1 I2V repos ship UniPC in flow mode; the tiny model uses the
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
    )
    for module in (transformer, vae, text_encoder, image_encoder):
        module.eval()
    return pipe


_CONFIGS = Path(__file__).resolve().parent / "model_configs"
_SHIPPED = {HUB_480P: "wan2.1-i2v-14b", HUB_720P: "wan2.1-i2v-14b"}  # one architecture, two resolutions
PARTS = ("transformer", "vae", "text_encoder", "image_encoder")


def shipped_config(model: str, part: str) -> dict[str, Any] | None:
    """The config of one part of a real model, as shipped in ``model_configs/`` (offline); None if not shipped."""
    if model not in _SHIPPED:
        return None
    return json.loads((_CONFIGS / f"{_SHIPPED[model]}.{part}.json").read_text())


def transformer_config(model: str) -> dict[str, Any]:
    """The transformer's config for ``model`` without loading weights (and offline for the known ids)."""
    if model == TINY:
        return dict(TINY_TRANSFORMER)
    config = shipped_config(model, "transformer")
    if config is None:
        source, model_id = _classify(model)
        if source == "local":
            path = Path(model_id) / "transformer" / "config.json"
        else:
            from huggingface_hub import hf_hub_download

            try:
                path = Path(hf_hub_download(model_id, "transformer/config.json"))
            except Exception as err:  # noqa: BLE001 - any hub failure means the same thing here
                raise ModelNotFoundError(
                    f"no transformer config for {model_id!r}: not shipped with cinescene and the hub "
                    f"could not provide it ({_first_line(err, 120)})"
                ) from err
        config = json.loads(path.read_text())
    return {k: v for k, v in config.items() if not k.startswith("_")}


def transformer_skeleton(model: str) -> torch.nn.Module:
    """The model's WanTransformer3DModel on the meta device: every module and shape, no memory."""
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    with init_empty_weights():
        return WanTransformer3DModel.from_config(transformer_config(model))


def load_model(spec: ModelSpec) -> LoadedModel:
    """Build or load the pipeline ``spec`` names and place it on its device."""
    if spec.memory not in MEMORY_MODES:
        raise InputError(f"unknown memory mode {spec.memory!r}: choose one of {', '.join(MEMORY_MODES)}")
    device = resolve_device(spec.device)
    notes: list[str] = []
    if spec.memory == "auto":
        spec = _auto_memory(spec, device, notes)
    if spec.model == TINY:
        pipe = build_tiny_pipeline(spec.seed)
        source, model_id = "tiny", TINY
    else:
        source, model_id = _classify(spec.model)
        pipe = _from_pretrained(model_id, source, device)
    pipe.set_progress_bar_config(disable=True)  # cinescene reports progress through its own callback
    if spec.transformer:
        pipe.transformer = load_transformer(spec.transformer, pipe.transformer, device)
        model_id = f"{model_id}+{Path(spec.transformer).name}"
    if spec.fp8:
        enable_fp8_storage(pipe.transformer, device)
    _place(pipe, spec, device)
    model = LoadedModel(
        pipe=pipe,
        spec=spec,
        source=source,
        model_id=model_id,
        device=device,
        dtype=pipe.transformer.dtype,
        defaults=defaults_for(spec.model if source != "local" else Path(spec.model).name),
        notes=notes,
    )
    _speed_up(model)
    return model


def _speed_up(model: LoadedModel) -> None:
    from . import slots, speed

    spec = model.spec
    speed.set_attention(model.pipe, spec.attention)
    if spec.compile:
        # Slots first: a compiled transformer must already hold every LoRA tensor it will ever swap.
        names = slots.DEFAULT_SLOTS + (("speed",) if spec.speed_slot else ())
        slots.prepare(model.pipe, model.slots, names)
        speed.compile_blocks(model.pipe, spec.compile_backend)


def _auto_memory(spec: ModelSpec, device: torch.device, notes: list[str]) -> ModelSpec:
    """Pick the fastest memory mode the device's free memory allows, and say which."""
    import dataclasses

    from . import plan

    if device.type != "cuda":
        notes.append("memory auto: no GPU, so nothing to offload (none)")
        return dataclasses.replace(spec, memory="none")
    free, _ = torch.cuda.mem_get_info(device)
    model = spec.model if spec.model in (TINY, HUB_480P, HUB_720P) or Path(spec.model).is_dir() else HUB_480P
    mode = plan.auto_memory_mode(model, free, vae_tiling=spec.vae_tiling)
    notes.append(f"memory auto: {free / 1e9:.1f} GB free on {device}; picked {mode}")
    if mode.startswith("fp8"):
        return dataclasses.replace(spec, memory=mode.removeprefix("fp8").removeprefix("+") or "none", fp8=True)
    return dataclasses.replace(spec, memory=mode)


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
    if fingerprint(transformer_config_of(folder)) != fingerprint(base.config):
        raise InputError(f"the transformer in {folder} has other dimensions than the base model's")
    return WanTransformer3DModel.from_pretrained(folder, torch_dtype=compute_dtype(device)).eval()


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
            class_name = json.loads(index.read_text()).get("_class_name")
        except (OSError, ValueError) as err:
            raise InputError(f"model folder {str(path)!r}: model_index.json is unreadable ({err})") from err
        if class_name != "WanImageToVideoPipeline":
            raise InputError(
                f"model folder {str(path)!r} holds a {class_name}, not a WanImageToVideoPipeline (Wan2.1 I2V)"
            )
        return "local", str(path.resolve())
    if _HUB_ID.match(model):
        return "hub", model
    raise InputError(f"model {model!r} is neither an existing folder nor a hub id of the form org/name, nor 'tiny'")


def _from_pretrained(model_id: str, source: str, device: torch.device) -> Any:
    from diffusers import WanImageToVideoPipeline
    from huggingface_hub.constants import HF_HUB_CACHE

    compute = compute_dtype(device)
    # The VAE and the CLIP image encoder stay in fp32 as the Wan authors and the
    # diffusers docs recommend: bf16 there costs visible quality for little memory.
    dtypes = {"default": compute, "vae": torch.float32, "image_encoder": torch.float32}
    try:
        return WanImageToVideoPipeline.from_pretrained(model_id, dtype=dtypes)
    except (OSError, ValueError, ConnectionError) as err:
        if source == "local":
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
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
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


def _place(pipe: Any, spec: ModelSpec, device: torch.device) -> None:
    if spec.memory == "none":
        pipe.to(device)
    elif spec.memory == "model-offload":
        pipe.enable_model_cpu_offload(device=device)
    elif spec.memory in ("group-offload", "group-offload-leaf"):
        # Streams overlap the next group's transfer with this group's compute; CUDA only.
        pipe.enable_group_offload(
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="block_level" if spec.memory == "group-offload" else "leaf_level",
            num_blocks_per_group=1 if spec.memory == "group-offload" else None,
            use_stream=device.type == "cuda",
        )
    if spec.vae_tiling:
        pipe.vae.enable_tiling()
