"""How the toy base model is made: the real diffusers/transformers classes, small, and actually trained.

``scripts/train_toy_model.py`` runs this; the result ships in ``cinescene/toy/model`` and loads
through the same local-folder path as Wan2.1's own weights. Every stage is deterministic for a
given thread count (fixed seeds, torch's deterministic algorithms):

1. VAE (AutoencoderKLWan, Wan2.1's 4x temporal / 8x spatial strides, trained through its output
   clamp: ``StraightThroughClamp``): reconstruction of toy frames, then of 9-frame clips, on
   half-size crops (it is convolutional: a quarter of the cost), then a few full-size clips, over
   every look and move so it can code any grade. Its ``latents_mean`` / ``latents_std`` are then
   measured on the data and written into its config, so the transformer sees unit-scale latents as
   the real model does.
2. Transformer (WanTransformer3DModel with image cross-attention, 36 input channels) together with
   the UMT5 text encoder, with cinescene's own flow-matching objective and exactly the conditioning
   the pipeline builds (``i2v_condition`` for clips, ``blank_condition`` for single frames), on
   *neutral-look* footage with every camera move. Moving clips name their move; static clips are
   captioned half "the camera is still" and half content only, so a content-only prompt means a
   still camera, and a look or a move never seen with content-only captions is new to the model:
   that is what the demo adapters teach. The CLIP image encoder keeps its seeded random weights: a
   random ViT's features already separate colours and layouts, and the first frame reaches the
   transformer through the VAE latents anyway.
3. Save with ``save_pretrained`` (safetensors), load it back through diffusers and through
   cinescene, sample one prompt per move and measure the camera, and write ``toy_model.json``
   (schedule, losses, timings, the move check, sha256 of every weight file).

The tokenizer is word-level over the toy vocabulary (``vocabulary``), one token per word, and says
that prompts are ``TEXT_TOKENS`` long (its ``model_max_length``, which cinescene pads to instead of
Wan's 512). It is saved as a ``tokenizer.json`` that transformers loads without this code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import architecture, atomic, camera
from . import footage

HEIGHT, WIDTH = 64, 112  # latents 8 x 14, 4 x 7 patches per latent frame
CLIP_FRAMES = 17  # 5 latent frames
VAE_CLIP_FRAMES = 9  # first frame + two 4-frame chunks: every path of the causal VAE
# Prompt tokens (the tokenizer's model_max_length, read by loading.text_length): the longest toy caption is
# 24 tokens. Wan's 512 would leave ~490 identical zero-padding keys in every cross-attention.
TEXT_TOKENS = 32
FLOW_SHIFT = 3.0  # the trainer's default --shift and Wan's 480P sampling shift
# What the folder's cinescene.json states (read by architecture.folder_sampling): a recognisable
# moving picture in a few seconds on a CPU. Guidance 3 with the empty negative prompt: the transformer is
# trained with 10% of captions dropped to "", so the empty prompt is the baseline guidance steers away from.
SAMPLING = {"preset": "toy", "steps": 12, "guidance": 3.0, "frames": CLIP_FRAMES, "negative_prompt": ""}


@dataclass(frozen=True)
class Schedule:
    vae_frame_steps: int = 2200
    vae_frame_batch: int = 8
    vae_clip_steps: int = 250
    vae_clip_batch: int = 2
    vae_full_steps: int = 30
    vae_full_batch: int = 1
    vae_lr: float = 1e-3
    clips: int = 240  # neutral 17-frame clips for the transformer, every move equally
    images: int = 320  # neutral single frames (blank conditioning)
    steps: int = 3000
    caption_dropout: float = 0.1  # share of captions trained as "" (the negative prompt), so guidance has a baseline
    clip_batch: int = 8
    image_batch: int = 16
    image_every: int = 4  # every 4th step is a batch of single frames
    lr: float = 6e-4
    warmup: int = 150
    eval_scenes: int = 2


# A few steps of every stage: the suite runs it to show the recipe runs and is deterministic.
QUICK = Schedule(vae_frame_steps=3, vae_frame_batch=2, vae_clip_steps=2, vae_clip_batch=1, vae_full_steps=1,
                 vae_full_batch=1, clips=6, images=4, steps=6, clip_batch=2, image_batch=2, warmup=2, eval_scenes=1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Clock:
    """Wall and CPU seconds per named phase (printed, and kept for toy_model.json)."""

    def __init__(self, report: Any = print) -> None:
        self.phases: dict[str, dict[str, float]] = {}
        self.report = report
        self._start = (time.perf_counter(), cpu_seconds())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), cpu_seconds())
        self.phases[name] = {"wall": round(now[0] - self._start[0], 2), "cpu": round(now[1] - self._start[1], 2)}
        self._start = now
        self.report(f"[{name}] {self.phases[name]['wall']:.1f} s wall, {self.phases[name]['cpu']:.1f} s CPU")


def setup_determinism(seed: int, threads: int) -> None:
    # Results depend on the thread count (kernels split reductions by thread): it is part of the recipe.
    torch.set_num_threads(threads)
    # Trained weights drift into the denormal range; on a CPU those are 10x slower and nothing needs them.
    torch.set_flush_denormal(True)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)


def vocabulary() -> list[str]:
    """Every word a toy caption can hold (special tokens first), in a fixed order."""
    words = set(footage.COLOURS) | set(footage.SHAPES) | {"a", "and", "on", "mottled", ",", "."}
    for background in footage.BACKGROUNDS:
        words.add(background)
    for phrase in footage.MOVE_PHRASES.values():
        words.update(phrase.split())
    return ["<pad>", "</s>", "<unk>", *sorted(words)]


def word_tokenizer() -> Any:
    """A word-level fast tokenizer over ``vocabulary()`` that ends every caption with ``</s>`` as T5's does."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=TEXT_TOKENS)


def text_encoder_config() -> dict[str, Any]:
    if architecture.TOY_TEXT_ENCODER["vocab_size"] != len(vocabulary()):
        raise RuntimeError(f"architecture.TOY_TEXT_ENCODER's vocab_size must be {len(vocabulary())}, the toy "
                           "vocabulary's size")
    return dict(architecture.TOY_TEXT_ENCODER)


def build_pipeline(seed: int) -> Any:
    """The WanImageToVideoPipeline of the toy configs with seeded random weights (before training)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(**architecture.TOY_TRANSFORMER)
    vae = AutoencoderKLWan(**architecture.TOY_VAE)
    text_encoder = UMT5EncoderModel(UMT5Config(**text_encoder_config()))
    image_encoder = CLIPVisionModel(CLIPVisionConfig(**architecture.TOY_IMAGE_ENCODER))
    side = architecture.TOY_IMAGE_ENCODER["image_size"]
    image_processor = CLIPImageProcessor(crop_size={"height": side, "width": side}, size={"shortest_edge": side})
    # Wan2.1's own sampler and shift, as the real model's scheduler config has them.
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=FLOW_SHIFT,
                                        num_train_timesteps=1000)
    pipe = WanImageToVideoPipeline(tokenizer=word_tokenizer(), text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                                   image_processor=image_processor, image_encoder=image_encoder,
                                   transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    for module in (transformer, vae, text_encoder, image_encoder):
        module.eval().requires_grad_(False)
    return pipe


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


# -- data ----------------------------------------------------------------------------------------------------


def scene_for(kind: int, index: int, seed: int) -> footage.Scene:
    # ``kind`` keeps the VAE's, the transformer's and the checks' scenes apart (and apart from the demo set's).
    return footage.random_scene(np.random.default_rng([seed, 1000 + kind, index]), WIDTH / HEIGHT)


def to_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1], as the pipeline's video processor gives."""
    return torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def vae_batch(rng: np.random.Generator, batch: int, frames: int, seed: int, crop: tuple[int, int] | None = None
              ) -> torch.Tensor:
    """Random scenes under every look and move, fresh each step: the VAE never sees one twice.

    ``crop`` cuts a random (height, width) window at a multiple of 8 pixels (the VAE's stride).
    """
    clips = []
    for _ in range(batch):
        index = int(rng.integers(1 << 30))
        look = footage.LOOKS[int(rng.integers(len(footage.LOOKS)))]
        move = footage.MOVES[int(rng.integers(len(footage.MOVES)))]
        clip = footage.render_clip(scene_for(1, index, seed), look, move, frames, HEIGHT, WIDTH, seed=index)
        if crop is not None:
            top = 8 * int(rng.integers((HEIGHT - crop[0]) // 8 + 1))
            left = 8 * int(rng.integers((WIDTH - crop[1]) // 8 + 1))
            clip = clip[:, top:top + crop[0], left:left + crop[1]]
        clips.append(clip)
    return to_pixels(np.stack(clips))


# -- stage 1: the VAE ----------------------------------------------------------------------------------------


class StraightThroughClamp(torch.overrides.TorchFunctionMode):
    """``torch.clamp`` as it is in the forward pass, the identity in the backward pass.

    AutoencoderKLWan clamps its decoded frames to [-1, 1]; a pixel pushed past the bound gets no
    gradient and stays there, which held a freshly initialised toy VAE at ~11 dB for hundreds of steps.
    Passing the gradient straight through trains the same decoder, clamp included, and gets out of that
    in under a hundred steps (measured: 14.7 dB against 11.2 dB after 300 steps at the same settings).
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is torch.clamp or func is torch.Tensor.clamp:
            return args[0] + (out - args[0]).detach()
        return out


def inflate_temporal(vae: Any) -> None:
    """Start the VAE as an image autoencoder applied frame by frame (I3D's and VideoLDM's "inflation").

    Every causal 3D convolution keeps only its current-frame tap (the two taps on earlier frames are
    zeroed), the encoder's temporal downsampling averages the frame pairs it merges, and the decoder's
    temporal upsampling repeats each latent frame. The frame phase trains exactly this per-frame model
    (single frames never reach the other taps, so they stay zero); the clip phases then learn motion
    from it. From a random start, 250 clip steps left frames 8 to 16 of a still clip at 14 dB against
    22 dB for frame 0; inflating that VAE alone, untrained, lifted them to 20 dB.
    """
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanResample

    with torch.no_grad():
        resamplers = [m for m in vae.modules() if isinstance(m, WanResample) and hasattr(m, "time_conv")]
        for module in resamplers:
            weight = module.time_conv.weight  # (out, in, 3, 1, 1); tap 2 is the newest frame
            weight.zero_()
            module.time_conv.bias.zero_()
            eye = torch.eye(weight.shape[1])
            if module.mode == "upsample3d":  # out = two frames' channels, both the input frame
                weight[:weight.shape[1], :, 2, 0, 0] = eye
                weight[weight.shape[1]:, :, 2, 0, 0] = eye
            else:  # downsample3d, stride 2: the mean of the two frames it merges
                weight[:, :, 1:, 0, 0] = eye[..., None] / 2
        temporal = {id(m.time_conv) for m in resamplers}
        for module in vae.modules():
            if isinstance(module, WanCausalConv3d) and id(module) not in temporal and module.kernel_size[0] == 3:
                module.weight[:, :, :2] = 0


def vae_loss(vae: Any, x: torch.Tensor) -> torch.Tensor:
    # The posterior's mode is all cinescene and the pipeline use (sample_mode="argmax"), so that is what is trained.
    with StraightThroughClamp():
        z = vae.encode(x).latent_dist.mode()
        recon = vae.decode(z).sample
    return ((recon - x) ** 2).mean() + 0.1 * (recon - x).abs().mean() + 1e-4 * (z ** 2).mean()


def train_vae(pipe: Any, schedule: Schedule, seed: int, log: dict[str, Any], report: Any = print) -> None:
    vae = pipe.vae
    inflate_temporal(vae)
    vae.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(list(vae.parameters()), lr=schedule.vae_lr, weight_decay=0.0)
    rng = np.random.default_rng([seed, 11])
    crop = (HEIGHT // 2, WIDTH // 2)
    phases = [("frames", schedule.vae_frame_steps, schedule.vae_frame_batch, 1, crop),
              ("clips", schedule.vae_clip_steps, schedule.vae_clip_batch, VAE_CLIP_FRAMES, crop),
              ("full", schedule.vae_full_steps, schedule.vae_full_batch, VAE_CLIP_FRAMES, None)]
    total = sum(p[1] for p in phases)
    step = 0
    summary: dict[str, Any] = {"lr": schedule.vae_lr, "phases": []}
    for name, steps, batch, frames, size in phases:
        losses = []
        for _ in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, schedule.vae_lr, max(1, total // 20))
            loss = vae_loss(vae, vae_batch(rng, batch, frames, seed, size))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if step % 100 == 0 or step == total - 1:
                report(f"vae step {step}/{total} ({name}) loss {losses[-1]:.4f}")
            step += 1
        summary["phases"].append({"name": name, "steps": steps, "batch": batch, "frames": frames,
                                  "size": list(size or (HEIGHT, WIDTH)),
                                  "loss_first": round(losses[0], 4) if losses else None,
                                  "loss_last": round(float(np.mean(losses[-20:])), 4) if losses else None})
    vae.eval().requires_grad_(False)
    log["vae"] = summary


@torch.no_grad()
def evaluate_vae(pipe: Any, seed: int, count: int) -> dict[str, Any]:
    """PSNR of held-out 17-frame clips (every look) through encode + decode."""
    scores: dict[str, list[float]] = {}
    for i in range(count):
        look, move = footage.LOOKS[i % len(footage.LOOKS)], footage.MOVES[i % len(footage.MOVES)]
        x = to_pixels(footage.render_clip(scene_for(9, i, seed), look, move, CLIP_FRAMES, HEIGHT, WIDTH, seed=i)[None])
        recon = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode()).sample
        mse = float(((recon.clamp(-1, 1) - x) ** 2).mean()) / 4.0  # on a [0, 1] scale
        scores.setdefault(look, []).append(10 * math.log10(1.0 / max(mse, 1e-10)))
    return {"psnr_db": round(float(np.mean([v for s in scores.values() for v in s])), 2),
            "psnr_db_by_look": {k: round(float(np.mean(v)), 2) for k, v in scores.items()}}


@torch.no_grad()
def set_latent_statistics(pipe: Any, seed: int, count: int) -> None:
    """Per-channel mean / std of the VAE's latents on neutral clips, into its config (what normalize divides by)."""
    latents = []
    for i in range(count):
        clip = footage.render_clip(scene_for(8, i, seed), "neutral", footage.MOVES[i % len(footage.MOVES)],
                                   CLIP_FRAMES, HEIGHT, WIDTH)
        latents.append(pipe.vae.encode(to_pixels(clip[None])).latent_dist.mode())
    z = torch.cat(latents).transpose(0, 1).reshape(architecture.TOY_VAE["z_dim"], -1).double()
    pipe.vae.register_to_config(latents_mean=[round(float(v), 4) for v in z.mean(1)],
                                latents_std=[round(float(v), 4) for v in z.std(1).clamp_min(1e-3)])


# -- stage 2: the transformer --------------------------------------------------------------------------------


def build_training_set(pipe: Any, schedule: Schedule, seed: int) -> dict[str, Any]:
    """Encode the neutral clips and frames once: latents, conditioning, CLIP embeddings, captions."""
    from PIL import Image

    from ..training.latent_cache import blank_condition, i2v_condition, normalize

    device = torch.device("cpu")
    clips: dict[str, list[Any]] = {"latents": [], "condition": [], "image_embeds": [], "caption": []}
    with torch.no_grad():
        for i in range(schedule.clips):
            move = footage.MOVES[i % len(footage.MOVES)]
            scene = scene_for(2, i, seed)
            named = move != "static" or (i // len(footage.MOVES)) % 2 == 0
            pil = [Image.fromarray(f) for f in footage.render_clip(scene, "neutral", move, CLIP_FRAMES, HEIGHT, WIDTH)]
            video = pipe.video_processor.preprocess_video(pil, height=HEIGHT, width=WIDTH)
            clips["latents"].append(normalize(pipe, pipe.vae.encode(video).latent_dist.mode())[0])
            clips["condition"].append(i2v_condition(pipe, pil[0], CLIP_FRAMES, HEIGHT, WIDTH)[0])
            clips["image_embeds"].append(pipe.encode_image(pil[0], device)[0])
            clips["caption"].append(footage.caption(scene, move, with_move=named))
        images: dict[str, list[Any]] = {"latents": [], "image_embeds": [], "caption": []}
        for i in range(schedule.images):
            scene = scene_for(3, i, seed)
            pil = Image.fromarray(footage.render_clip(scene, "neutral", "static", 1, HEIGHT, WIDTH)[0])
            video = pipe.video_processor.preprocess_video([pil], height=HEIGHT, width=WIDTH)
            images["latents"].append(normalize(pipe, pipe.vae.encode(video).latent_dist.mode())[0])
            images["image_embeds"].append(pipe.encode_image(pil, device)[0])
            images["caption"].append(footage.describe(scene))
        blank = blank_condition(pipe, HEIGHT, WIDTH)[0]
    unknown = {w for c in clips["caption"] + images["caption"] for w in re.findall(r"[\w-]+|[,.]", c)
               if w not in vocabulary()}
    if unknown:
        raise RuntimeError(f"captions use words outside the toy vocabulary: {sorted(unknown)}")
    return {"clips": {**{k: torch.stack(v) for k, v in clips.items() if k != "caption"}, "caption": clips["caption"]},
            "images": {**{k: torch.stack(v) for k, v in images.items() if k != "caption"},
                       "caption": images["caption"], "condition": blank}}


def prompt_embeds(pipe: Any, captions: list[str], max_length: int = TEXT_TOKENS) -> torch.Tensor:
    """What ``pipe.encode_prompt`` returns (cleaned text, T5 states, zeros past each caption), with gradients.

    T5 runs on the batch's longest caption instead of all TEXT_TOKENS positions: the attention mask keeps
    padding out of every real token's state and the pipeline zeroes the padded states anyway, so the
    result is the same (``check_prompt_path`` measures it) at a fifth of the cost.
    """
    from diffusers.pipelines.wan.pipeline_wan_i2v import prompt_clean

    tokens = pipe.tokenizer([prompt_clean(c) for c in captions], padding="longest", max_length=max_length,
                            truncation=True, add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    states = pipe.text_encoder(tokens.input_ids, tokens.attention_mask).last_hidden_state
    states = states * tokens.attention_mask[..., None].to(states.dtype)
    return torch.nn.functional.pad(states, (0, 0, 0, max_length - states.shape[1]))


@torch.no_grad()
def check_prompt_path(pipe: Any, captions: list[str]) -> float:
    """Largest difference between the training-time text path and the pipeline's own encode_prompt."""
    reference, _ = pipe.encode_prompt(captions, do_classifier_free_guidance=False, max_sequence_length=TEXT_TOKENS,
                                      device=torch.device("cpu"))
    return float((prompt_embeds(pipe, captions) - reference).abs().max())


def train_transformer(pipe: Any, data: dict[str, Any], schedule: Schedule, seed: int, log: dict[str, Any],
                      report: Any = print) -> None:
    # The base model is trained with the trainer's own objective, not the trainer itself: the trainer fine-tunes
    # adapters (or a transformer) against a frozen text encoder, and the toy text encoder has to learn too.
    from ..training.objective import TimestepSampler, flow_matching_loss

    transformer, text_encoder = pipe.transformer, pipe.text_encoder
    transformer.train().requires_grad_(True)
    text_encoder.train().requires_grad_(True)
    params = [p for m in (transformer, text_encoder) for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=0.01, betas=(0.9, 0.99))
    sampler = TimestepSampler(FLOW_SHIFT, "uniform")
    rng = np.random.default_rng([seed, 21])
    clips, images = data["clips"], data["images"]
    losses: dict[str, list[float]] = {"clip": [], "image": []}
    for step in range(schedule.steps):
        kind = "image" if step % schedule.image_every == schedule.image_every - 1 else "clip"
        source = images if kind == "image" else clips
        size = schedule.image_batch if kind == "image" else schedule.clip_batch
        index = rng.choice(len(source["caption"]), size=min(size, len(source["caption"])), replace=False)
        condition = (images["condition"].expand(len(index), *images["condition"].shape) if kind == "image"
                     else clips["condition"][index])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, schedule.steps, schedule.lr, schedule.warmup)
        dropped = rng.random(len(index)) < schedule.caption_dropout
        captions = ["" if drop else source["caption"][i] for i, drop in zip(index, dropped)]
        batch = {"latents": source["latents"][index], "condition": condition,
                 "image_embeds": source["image_embeds"][index], "prompt_embeds": prompt_embeds(pipe, captions)}
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        loss = flow_matching_loss(transformer, batch, sampler, generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses[kind].append(loss.item())
        if step % 100 == 0 or step == schedule.steps - 1:
            recent = {k: float(np.mean(v[-25:])) for k, v in losses.items() if v}
            report(f"transformer step {step}/{schedule.steps} " + " ".join(f"{k} {v:.4f}" for k, v in recent.items()))
    transformer.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)

    def curve(values: list[float]) -> list[float]:
        chunk = max(1, len(values) // 10)
        return [round(float(np.mean(values[i:i + chunk])), 4) for i in range(0, len(values), chunk)]

    log["text_path_max_difference"] = check_prompt_path(pipe, clips["caption"][:4] + images["caption"][:4])
    log["transformer"] = {"steps": schedule.steps, "lr": schedule.lr, "warmup": schedule.warmup, "shift": FLOW_SHIFT,
                          "caption_dropout": schedule.caption_dropout,
                          "timestep_sampling": "uniform", "loss_curve_clips": curve(losses["clip"]),
                          "loss_curve_images": curve(losses["image"])}


# -- stage 3: save, reload, check ----------------------------------------------------------------------------


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_hashes(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.relative_to(folder).as_posix(): {"sha256": sha256(p), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*.safetensors"))}


def save(pipe: Any, folder: Path) -> None:
    """``save_pretrained`` into a sibling folder, then swapped in whole: a crash never leaves half a model."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    atomic.write_json(tmp / architecture.SAMPLING_FILE, {
        "about": "cinescene's toy model: a small Wan2.1 I2V trained on synthetic footage (scripts/train_toy_model.py)",
        "sampling": SAMPLING})
    atomic.replace_dir(tmp, folder)


@torch.no_grad()
def check_loads(folder: Path, pipe: Any) -> dict[str, Any]:
    from diffusers import WanImageToVideoPipeline

    from ..loading import load_model
    from ..settings import ModelSpec

    loaded = WanImageToVideoPipeline.from_pretrained(str(folder))
    same = all(torch.equal(a, b) for a, b in zip(loaded.transformer.state_dict().values(),
                                                  pipe.transformer.state_dict().values(), strict=True))
    model = load_model(ModelSpec(model=str(folder), device="cpu"))
    return {"diffusers_from_pretrained_equal": same, "cinescene_source": model.source}


@torch.no_grad()
def move_check(folder: Path, seed: int, scenes: int) -> dict[str, Any]:
    """Sample held-out neutral first frames with each move's prompt (and content only); measure the camera."""
    from PIL import Image

    from ..loading import load_model
    from ..sampler import sample
    from ..settings import ModelSpec, SampleSettings

    model = load_model(ModelSpec(model=str(folder), device="cpu"))
    results: dict[str, Any] = {}
    for move in (None, *footage.MOVES):
        rows = []
        for i in range(scenes):
            scene = scene_for(7, i, seed)
            image = Image.fromarray(footage.render_clip(scene, "neutral", "static", 1, HEIGHT, WIDTH)[0])
            prompt = footage.describe(scene) if move is None else footage.caption(scene, move)
            settings = SampleSettings(prompt=prompt, seed=i, height=HEIGHT, width=WIDTH, **SAMPLING)
            motion = camera.measure(sample(model, image, settings).frames)
            rows.append({"dx": round(motion.dx, 3), "dy": round(motion.dy, 3), "zoom": round(motion.zoom, 4),
                         "label": motion.label})
        results[move or "content-only"] = rows
    return results


def train(folder: Path, schedule: Schedule = Schedule(), seed: int = 0, threads: int = 2, check_moves: bool = True,
          report: Any = print) -> dict[str, Any]:
    """The whole recipe into ``folder``; returns what it writes to ``folder/toy_model.json``."""
    setup_determinism(seed, threads)
    clock = Clock(report)
    started = (time.perf_counter(), cpu_seconds())
    log: dict[str, Any] = {"schedule": dataclasses.asdict(schedule), "seed": seed, "torch_threads": threads,
                           "torch": torch.__version__, "size": {"height": HEIGHT, "width": WIDTH,
                                                                "clip_frames": CLIP_FRAMES}}
    pipe = build_pipeline(seed)
    log["parameters"] = {name: parameters(getattr(pipe, name))
                         for name in ("transformer", "vae", "text_encoder", "image_encoder")}
    report(f"parameters: {log['parameters']}")
    train_vae(pipe, schedule, seed, log, report)
    clock.lap("vae")
    log["vae"].update(evaluate_vae(pipe, seed, count=2 if schedule == QUICK else 10))
    set_latent_statistics(pipe, seed, count=2 if schedule == QUICK else 24)
    report(f"vae reconstruction: {log['vae']['psnr_db']} dB PSNR")
    data = build_training_set(pipe, schedule, seed)
    log["data"] = {"clips": schedule.clips, "images": schedule.images, "look": "neutral", "moves": list(footage.MOVES),
                   "example_captions": data["clips"]["caption"][:len(footage.MOVES)]}
    clock.lap("encode")
    train_transformer(pipe, data, schedule, seed, log, report)
    clock.lap("transformer")
    save(pipe, folder)
    log["loads"] = check_loads(folder, pipe)
    clock.lap("save")
    if check_moves:
        log["move_check"] = move_check(folder, seed, schedule.eval_scenes)
        clock.lap("move_check")
    log["sampling"] = SAMPLING
    log["timings"] = clock.phases
    log["total"] = {"wall_s": round(time.perf_counter() - started[0], 1), "cpu_s": round(cpu_seconds() - started[1], 1),
                    "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    log["weights"] = weight_hashes(folder)
    log["weights_total_bytes"] = sum(w["bytes"] for w in log["weights"].values())
    atomic.write_json(folder / "toy_model.json", log)
    return log
