"""Shot and model settings as dataclasses, with Wan's official defaults and the shared choice lists.

Each setting is defined once, here: the command-line flags (``cli/common.py``)
and the app's forms are derived from these fields and their ``metadata``
(``help``, ``flag``, ``choices``; ``cli=False`` keeps a field off the command line).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

HUB_480P = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
HUB_720P = "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers"
# Wan2.2: image-to-video with two 14B experts (high noise, low noise), and the 5B text-image-to-video model.
HUB_WAN22_I2V = "Wan-AI/Wan2.2-I2V-A14B-Diffusers"
HUB_WAN22_TI2V = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
TINY = "tiny"
TINY_WAN22 = "tiny-wan22"  # two tiny experts and a boundary, as Wan2.2 I2V A14B
TINY_TI2V = "tiny-ti2v"  # one tiny transformer over a tiny Wan2.2 VAE (48 latent channels), as Wan2.2 TI2V-5B
TINY_MODELS = (TINY, TINY_WAN22, TINY_TI2V)  # built in memory with random weights: for tests
TOY = "toy"  # the small Wan trained on toy footage that ships in cinescene/toy/model
DEFAULT_MODEL = HUB_480P

# Wan's own default negative prompt (Wan2.1 shared_config.py). The model was
# trained and tuned with this exact Chinese text, so it works better than any
# English paraphrase.
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

MAX_FRAMES = 241  # 15 s at 16 fps; beyond this Wan2.1 loses coherence and RoPE tables run short
MAX_SIDE = 1280
SIZE_MULTIPLE = 16  # VAE stride 8 x transformer patch 2
MAX_PROMPT_CHARS = 2000
MAX_STEPS = 200
MAX_TEXT_TOKENS = 512  # WanImageToVideoPipeline pads every prompt to 512 T5 tokens

# Choice lists the CLI, the app and the core share; here because this module imports nothing heavy.
# Where weights wait while not computing, fastest first (placement.py applies them, budget.py estimates them).
MEMORY_MODES = ("none", "model-offload", "group-offload", "group-offload-leaf")
MEMORY_CHOICES = (*MEMORY_MODES, "auto")  # auto: the fastest mode that fits the GPU's free memory
METRIC_WEIGHTS = ("pretrained", "fallback", "random")  # see metrics.MetricsConfig.weights
# Step caches (speed.py): skip block computations that change little between denoising steps.
CACHE_KINDS = ("none", "first-block", "taylorseer", "magcache", "magcache-calibrate")
# Context parallelism (context_parallel.py): one shot split over the processes torchrun starts, by diffusers' Ulysses
# (all-to-all over heads) or ring attention (keys and values passed around).
PARALLEL_MODES = ("none", "ulysses", "ring")


@dataclass(frozen=True)
class Preset:
    """A resolution target: the pixel area to aim for and its recommended flow shift."""

    name: str
    area: int
    shift: float


PRESETS: dict[str, Preset] = {
    "480P": Preset("480P", 480 * 832, 3.0),
    "720P": Preset("720P", 720 * 1280, 5.0),
    # Wan2.2 TI2V-5B's 720P is 1280 x 704 (Wan2.2 wan/configs/__init__.py SUPPORTED_SIZES['ti2v-5B']).
    "704P": Preset("704P", 704 * 1280, 5.0),
    # Not an official Wan resolution: a small area so the tiny CPU model (and a
    # quick look at a real one) answers in seconds.
    "preview": Preset("preview", 128 * 224, 3.0),
    # The toy model's own size (it was trained at 64 x 112).
    "toy": Preset("toy", 64 * 112, 3.0),
}


@dataclass(frozen=True)
class AdapterChoice:
    """One slot's adapter for one request; ``end_strength`` ramps linearly over the denoising steps."""

    slot: str
    name: str
    strength: float = 1.0
    end_strength: float | None = None

    def strength_at(self, step: int, total: int) -> float:
        """Strength for denoising step ``step`` (0-based) of ``total``."""
        if self.end_strength is None or total <= 1:
            return self.strength
        return self.strength + (self.end_strength - self.strength) * step / (total - 1)

    @classmethod
    def parse(cls, slot: str, text: str) -> AdapterChoice:
        """``NAME``, ``NAME:STRENGTH`` or ``NAME:START:END`` (a ramp over the steps), as the CLI takes it."""
        parts = text.split(":")
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise ValueError(f"expected NAME[:STRENGTH[:END]], got {text!r}")
        numbers = [float(p) for p in parts[1:]]
        return cls(slot, parts[0], *numbers)


@dataclass
class SampleSettings:
    """Everything that decides a generated video apart from the model and image.

    ``None`` for ``shift``, ``height`` and ``width`` means "derive it": shift from
    the preset, size from the input image's aspect ratio at the preset's area.
    """

    prompt: str = field(metadata={"help": "what happens in the shot"})
    negative_prompt: str = field(default=DEFAULT_NEGATIVE_PROMPT,
                                 metadata={"help": "default: Wan's own negative prompt"})
    seed: int = 0
    steps: int = field(default=40, metadata={"help": "denoising steps (model default: 40)"})
    frames: int = field(default=81, metadata={"help": "4k+1, at most 241 (model default: 81)"})
    guidance: float = field(default=5.0, metadata={"help": "classifier-free guidance (default 5.0; on Wan2.2 "
                                                           "A14B the high-noise expert's)"})
    guidance_2: float | None = field(default=None, metadata={
        "help": "guidance of the low-noise expert, Wan2.2 A14B only (default: the model's)"})
    boundary: float | None = field(default=None, metadata={
        "help": "Wan2.2 A14B: the timestep, as a share of the 1000 training timesteps, below which the low-noise "
                "expert takes over (default: the model's, 0.9)"})
    shift: float | None = field(default=None, metadata={
        "help": "flow shift (default: the model's; Wan2.1 3.0 at 480P, 5.0 at 720P)"})
    preset: str = field(default="480P", metadata={"help": "target pixel area", "choices": tuple(PRESETS)})
    height: int | None = field(default=None, metadata={"help": "multiple of 16 (default: from the image)"})
    width: int | None = field(default=None, metadata={"help": "multiple of 16 (default: from the image)"})
    fps: int = field(default=16, metadata={"help": "frame rate of the written mp4 (default 16)"})
    adapters: tuple[AdapterChoice, ...] = field(default=(), metadata={"cli": False})  # --style/--motion/--speed
    cache: str = field(default="none", metadata={
        "choices": CACHE_KINDS, "help": "step caching: skip block computations that change little between steps"})
    cache_threshold: float | None = field(default=None, metadata={
        "help": "first-block / magcache threshold (higher: faster, rougher)"})
    cache_interval: int | None = field(default=None, metadata={"help": "taylorseer: full steps every N"})
    mag_ratios: str | None = field(default=None, metadata={"help": "the .magcache.json a magcache-calibrate run wrote"})

    def replace(self, **changes: Any) -> SampleSettings:
        """A copy with ``changes`` applied; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the adapters tuple becomes a list of dicts."""
        data = dataclasses.asdict(self)
        data["adapters"] = [dataclasses.asdict(a) for a in self.adapters]
        return data


@dataclass(frozen=True)
class ModelSpec:
    """What to load. Frozen and hashable: it is the key of the pipeline cache."""

    model: str = field(default=DEFAULT_MODEL, metadata={
        "help": "hub id, local diffusers folder, or 'tiny' (default: the 480P model on a GPU, tiny on a CPU)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    memory: str = field(default="none", metadata={
        "choices": MEMORY_CHOICES, "help": "where weights wait while not computing; auto picks from the GPU's free "
                                           "memory"})
    fp8: bool = field(default=False, metadata={"help": "store the transformer in fp8 (half the VRAM)"})
    vae_tiling: bool = field(default=False, metadata={"help": "decode the video in tiles (less VRAM)"})
    attention: str = field(default="native", metadata={"help": "attention backend: native, flash, sage, ..."})
    compile: bool = field(default=False, metadata={"help": "torch.compile the transformer blocks"})
    compile_backend: str = field(default="inductor", metadata={"help": "torch.compile backend (tests use eager)",
                                                                "hidden": True})
    speed_slot: bool = field(default=False, metadata={
        "help": "prepare the speed adapter slot at load time (needed with --compile)"})
    seed: int = field(default=0, metadata={"cli": False})  # only used by the tiny model's random weights
    transformer: str | None = field(default=None, metadata={
        "help": "a fully fine-tuned transformer folder to use instead"})
    # The resolution the model was made for (Wan2.1 I2V 14B comes as 480P and 720P: same configs, other
    # weights). It sets the shots' default size and shift; when not given it is read from the model's files.
    preset: str | None = field(default=None, metadata={
        "choices": tuple(PRESETS), "help": "the model's resolution (480P, 720P) and the shots' default size "
                                           "(default: read from the model id or folder)"})
    # One shot on every process torchrun started, the transformer's sequence split between them. Only commands
    # that make one shot take it (cli.common.add_model_args(parallel=True)): the app and the multi-video
    # commands would run every request in every process.
    parallel: str = field(default="none", metadata={
        "choices": PARALLEL_MODES, "help": "under torchrun: one shot across the processes with diffusers' context "
                                           "parallelism (ulysses, or ring)"})


@dataclass(frozen=True)
class ModelDefaults:
    """Per-model sample defaults the UI and CLI start from.

    ``shift`` None means the preset's (Wan2.1's rule); ``guidance_2`` and ``boundary`` are for two-expert models.
    """

    preset: str = "480P"
    steps: int = 40
    frames: int = 81
    guidance: float = 5.0
    guidance_2: float | None = None
    boundary: float | None = None
    shift: float | None = None
    fps: int = 16
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self, prompt: str = "", **overrides: Any) -> SampleSettings:
        base = SampleSettings(
            prompt=prompt, preset=self.preset, steps=self.steps, frames=self.frames, guidance=self.guidance,
            guidance_2=self.guidance_2, boundary=self.boundary, shift=self.shift, fps=self.fps,
        )
        return base.replace(**overrides)
