"""Stage 1 of the toy recipe: the VAE (AutoencoderKLWan), trained to reconstruct toy frames and clips.

Frames first, then 9-frame clips, on half-size crops (it is convolutional: a quarter of the cost),
then a few full-size clips, over every look and move so it can code any grade; trained through its
output clamp (``StraightThroughClamp``) from an inflated start (``inflate_temporal``). Its
output layer then gets a least-squares colour correction (``calibrate_colours``), and its
``latents_mean`` / ``latents_std`` are measured on the data and written into its config.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .. import architecture
from . import footage
from .recipe import CLIP_FRAMES, HEIGHT, VAE_CLIP_FRAMES, WIDTH, Schedule, lr_at, scene_for, to_pixels


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


def held_out_clip(kind: int, index: int, seed: int) -> tuple[str, torch.Tensor]:
    """Clip ``index`` of a held-out set: look and move cycle together, so a few clips cover every look and move."""
    look, move = footage.LOOKS[index % len(footage.LOOKS)], footage.MOVES[index % len(footage.MOVES)]
    clip = footage.render_clip(scene_for(kind, index, seed), look, move, CLIP_FRAMES, HEIGHT, WIDTH, seed=index)
    return look, to_pixels(clip[None])


@torch.no_grad()
def evaluate_vae(pipe: Any, seed: int, count: int) -> dict[str, Any]:
    """PSNR of held-out 17-frame clips (every look) through encode + decode."""
    scores: dict[str, list[float]] = {}
    for i in range(count):
        look, x = held_out_clip(9, i, seed)
        recon = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode()).sample
        mse = float(((recon.clamp(-1, 1) - x) ** 2).mean()) / 4.0  # on a [0, 1] scale
        scores.setdefault(look, []).append(10 * math.log10(1.0 / max(mse, 1e-10)))
    return {"psnr_db": round(float(np.mean([v for s in scores.values() for v in s])), 2),
            "psnr_db_by_look": {k: round(float(np.mean(v)), 2) for k, v in scores.items()}}


CALIBRATION_CLIPS = 20


@torch.no_grad()
def calibrate_colours(pipe: Any, seed: int, count: int = CALIBRATION_CLIPS) -> dict[str, Any]:
    """Fold a least-squares colour correction (a 3x3 matrix and an offset) into the decoder's output layer.

    After its training the decoder still casts every reconstruction (measured on the shipped VAE: green 5%
    low, +9 to +10 a* on neutral and teal-orange clips alike), and the look distance counts a cast as much as
    a grade (it was 40% of the base's distance to the demo look, docs/toy.md). A cast that is a linear map of
    the three output channels is undone exactly by folding the inverse map into the output convolution's
    weights and bias. The encoder is untouched, so the latents the transformer learns on are the same. Fitted
    on round trips of fresh clips of every look and move, before the output clamp (numpy's float64
    ``lstsq``; no library fits a colour matrix into a layer).
    """
    conv = pipe.vae.decoder.conv_out
    outputs: list[torch.Tensor] = []
    hook = pipe.vae.decoder.register_forward_hook(lambda module, args, out: outputs.append(out.detach()))
    decoded, targets = [], []
    try:
        for i in range(count):
            _, x = held_out_clip(10, i, seed)
            outputs.clear()
            pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode())
            decoded.append(torch.cat(outputs, 2)[0].reshape(3, -1).T.double().numpy())
            targets.append(x[0].reshape(3, -1).T.double().numpy())
    finally:
        hook.remove()
    y, target = np.concatenate(decoded), np.concatenate(targets)
    design = np.concatenate([y, np.ones((len(y), 1))], 1)
    fit, *_ = np.linalg.lstsq(design, target, rcond=None)  # (4, 3): output = [y, 1] @ fit

    def mse(values: np.ndarray) -> float:
        return float((((np.clip(values, -1, 1) - target) / 2) ** 2).mean())  # on a [0, 1] scale

    matrix = torch.from_numpy(fit[:3].T.copy()).to(conv.weight)  # (out, in)
    conv.weight.copy_(torch.einsum("oi,i...->o...", matrix, conv.weight))
    conv.bias.copy_(matrix @ conv.bias + torch.from_numpy(fit[3]).to(conv.bias))
    return {"clips": count, "matrix": [[round(float(v), 4) for v in row] for row in fit[:3].T],
            "offset": [round(float(v), 4) for v in fit[3]], "mse_before": round(mse(y), 5),
            "mse_after": round(mse(design @ fit), 5)}


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
