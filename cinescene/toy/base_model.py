"""How the toy base model is made: the real diffusers/transformers classes, small, and actually trained.

``scripts/train_toy_model.py`` runs this; the result ships in ``cinescene/toy/model`` and loads
through the same local-folder path as Wan2.1's own weights. Every stage is deterministic for a
given thread count (fixed seeds, torch's deterministic algorithms):

1. VAE (``vae_training``; AutoencoderKLWan, Wan2.1's 4x temporal / 8x spatial strides, trained through its output
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
import json
import re
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import architecture, atomic, camera
from ..errors import InputError
from ..hashing import sha256_file
from . import footage
from .recipe import (
    CLIP_FRAMES,
    FLOW_SHIFT,
    HEIGHT,
    MOVE_CHECK_SEED,
    QUICK,
    SAMPLING,
    TEXT_TOKENS,
    WIDTH,
    Clock,
    Schedule,
    cpu_seconds,
    lr_at,
    machine,
    parameters,
    scene_for,
    setup_determinism,
)
from .vae_training import CALIBRATION_CLIPS, calibrate_colours, evaluate_vae, set_latent_statistics, train_vae


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


def weight_hashes(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*.safetensors"))}


def relative_difference(ours: Path, theirs: Path) -> float:
    """How far two weight files are apart: the L2 norm of the difference over that of ``theirs``, all tensors."""
    from safetensors.torch import load_file

    a, b = load_file(str(ours)), load_file(str(theirs))
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return float("inf")
    diff = sum(float((a[k].double() - b[k].double()).square().sum()) for k in a)
    norm = sum(float(b[k].double().square().sum()) for k in b)
    return (diff / norm) ** 0.5 if norm else float("inf")


def reproduction(log: dict[str, Any], shipped: dict[str, Any], folder: Path | None = None,
                 shipped_folder: Path | None = None) -> list[str]:
    """Lines saying which weight files a run wrote as the shipped ones, and on which CPUs the two ran.

    Given both folders, a file that differs says by how much: on another kind of CPU the bytes part, and
    the size of the difference tells rounding (the transformer stage on the shipped VAE: 7e-4) from
    another model (a VAE trained there: a different draw).
    """
    lines = []
    for name, ours in sorted(log["weights"].items()):
        same = ours["sha256"] == shipped["weights"].get(name, {}).get("sha256")
        line = f"{name}: {'the same sha256 as' if same else 'differs from'} the shipped file"
        if not same and folder is not None and shipped_folder is not None and (shipped_folder / name).is_file():
            line += f" (relative difference {relative_difference(folder / name, shipped_folder / name):.1e})"
        lines.append(line)

    def ran_on(record: dict[str, Any]) -> str:
        cpu = record.get("machine")  # runs before this was recorded did not say
        where = f"{cpu['cpu']} ({cpu['instruction_set']})" if cpu else "an unrecorded CPU"
        return f"{where}, {record['torch_threads']} threads"

    if "moves_followed" in log and "moves_followed" in shipped:
        ours_moves, theirs = log["moves_followed"], shipped["moves_followed"]
        lines.append(f"move prompts followed: {ours_moves['followed']} of {ours_moves['of']} (the shipped model: "
                     f"{theirs['followed']} of {theirs['of']}, on the same stills)")
    lines.append(f"this run: {ran_on(log)}; the shipped run: {ran_on(shipped)} (the bytes repeat on the same kind of "
                 "CPU with the same threads)")
    return lines


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
def move_check(folder: Path, scenes: int) -> dict[str, Any]:
    """Sample held-out neutral first frames with each move's prompt (and content only); measure the camera.

    The stills do not depend on the run's seed: every run (any seed, VAE or CPU) is judged on the same
    prompts, so two bases compare. Two stills were too few to tell bases apart: a base that follows the
    moves and one that leaves the camera still followed 7 of 12 prompts each there, and 43 and 12 of 48
    on these eight (docs/toy.md, "Judging a base").
    """
    from PIL import Image

    from ..loading import load_model
    from ..sampler import sample
    from ..settings import ModelSpec, SampleSettings

    model = load_model(ModelSpec(model=str(folder), device="cpu"))
    results: dict[str, Any] = {}
    for move in (None, *footage.MOVES):
        rows = []
        for i in range(scenes):
            scene = scene_for(7, i, MOVE_CHECK_SEED)
            image = Image.fromarray(footage.render_clip(scene, "neutral", "static", 1, HEIGHT, WIDTH)[0])
            prompt = footage.describe(scene) if move is None else footage.caption(scene, move)
            settings = SampleSettings(prompt=prompt, seed=i, height=HEIGHT, width=WIDTH, **SAMPLING)
            motion = camera.measure(sample(model, image, settings).frames)
            rows.append({"dx": round(motion.dx, 3), "dy": round(motion.dy, 3), "zoom": round(motion.zoom, 4),
                         "along": round(motion.along(move or "static"), 3), "label": motion.label})
        results[move or "content-only"] = rows
    return results


def moves_followed(check: dict[str, Any]) -> dict[str, Any]:
    """Per move prompt: how many samples were measured as that move, and their mean motion along it."""
    by_move = {move: {"followed": sum(row["label"] == move for row in rows), "of": len(rows),
                      "along": round(float(np.mean([row["along"] for row in rows])), 3)}
               for move, rows in check.items() if move != "content-only"}
    return {"followed": sum(m["followed"] for m in by_move.values()), "of": sum(m["of"] for m in by_move.values()),
            "by_move": by_move}


def recheck_moves(folder: Path, schedule: Schedule = Schedule(), threads: int = 2,
                  report: Any = print) -> dict[str, Any]:
    """Run today's move check on a model folder the script made, and write it into its ``toy_model.json``.

    The weights are not touched: this is how an older run (or the shipped model) is judged on the same
    stills as a new one.
    """
    record = folder / "toy_model.json"
    if not record.is_file():
        raise InputError(f"{folder}: no toy_model.json there (not a folder train_toy_model.py wrote)")
    log = json.loads(record.read_text())
    setup_determinism(0, threads)
    clock = Clock(report)
    check = move_check(folder, schedule.eval_scenes)
    clock.lap("move_check")
    # The run's own timings stay as they were: this check's time is kept beside it.
    log["move_check_rechecked"] = {"stills_before": log["schedule"].get("eval_scenes"), "threads": threads,
                                   **clock.phases["move_check"]}
    log["move_check"], log["moves_followed"] = check, moves_followed(check)
    log["schedule"]["eval_scenes"] = schedule.eval_scenes
    atomic.write_json(record, log)
    return log


def load_vae(model_folder: Path) -> tuple[Any, dict[str, Any]]:
    """A trained toy VAE from a model folder, and what to record of it (its file's sha256, its own log's numbers)."""
    from diffusers import AutoencoderKLWan

    vae = AutoencoderKLWan.from_pretrained(str(model_folder / "vae"))
    vae.eval().requires_grad_(False)
    record: dict[str, Any] = {"from": str(model_folder),
                              "sha256": sha256_file(model_folder / "vae" / "diffusion_pytorch_model.safetensors")}
    made = model_folder / "toy_model.json"
    if made.is_file():
        source = json.loads(made.read_text()).get("vae", {})
        record["made_by"] = source.get("made_by", source)  # the run that trained it, through any --vae runs between
    return vae, record


def train(folder: Path, schedule: Schedule = Schedule(), seed: int = 0, threads: int = 2, check_moves: bool = True,
          report: Any = print, vae_from: Path | None = None) -> dict[str, Any]:
    """The whole recipe into ``folder``; returns what it writes to ``folder/toy_model.json``.

    ``vae_from`` (a toy model folder) skips the VAE stage and trains the transformer on that folder's VAE.
    The VAE stage is where another kind of CPU makes another model: its rounding grows over training
    into another VAE, and the transformer trained on it follows fewer prompted moves. The transformer stage
    does not amplify it: on the shipped VAE, on another CPU, it lands within 7e-4 of the shipped weights.
    """
    setup_determinism(seed, threads)
    clock = Clock(report)
    started = (time.perf_counter(), cpu_seconds())
    log: dict[str, Any] = {"schedule": dataclasses.asdict(schedule), "seed": seed, "torch_threads": threads,
                           "torch": torch.__version__, "machine": machine(),
                           "size": {"height": HEIGHT, "width": WIDTH, "clip_frames": CLIP_FRAMES}}
    pipe = build_pipeline(seed)
    log["parameters"] = {name: parameters(getattr(pipe, name))
                         for name in ("transformer", "vae", "text_encoder", "image_encoder")}
    report(f"parameters: {log['parameters']}")
    if vae_from is not None:
        pipe.vae, log["vae"] = load_vae(vae_from)  # trained, colour-corrected, with its latent statistics
        report(f"vae: {vae_from} (not trained)")
    else:
        train_vae(pipe, schedule, seed, log, report)
        clock.lap("vae")
        log["vae"]["before_calibration"] = evaluate_vae(pipe, seed, count=2 if schedule == QUICK else 10)
        log["vae"]["calibration"] = calibrate_colours(pipe, seed, count=2 if schedule == QUICK else CALIBRATION_CLIPS)
        clock.lap("calibration")
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
        log["move_check"] = move_check(folder, schedule.eval_scenes)
        clock.lap("move_check")
        log["moves_followed"] = moves_followed(log["move_check"])
    log["sampling"] = SAMPLING
    log["timings"] = clock.phases
    log["total"] = {"wall_s": round(time.perf_counter() - started[0], 1), "cpu_s": round(cpu_seconds() - started[1], 1),
                    "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    log["weights"] = weight_hashes(folder)
    log["weights_total_bytes"] = sum(w["bytes"] for w in log["weights"].values())
    atomic.write_json(folder / "toy_model.json", log)
    return log
