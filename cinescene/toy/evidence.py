"""Evidence that fine-tuning teaches a look and a camera move, each without the other, on the toy model.

The recipe behind the learning test, the demo adapters and the numbers in
``docs/toy.md``:

1. A fine-tuning set the base model never saw: ``teal-orange`` clips panning
   right with content-only captions, plus teal-orange stills (``footage.DEMO``).
2. A style LoRA, then a motion LoRA (not under the style: ``TrainConfig.motion_under_style``
   says why), through cinescene's own trainer (``TRAINING``: rank 8, alpha 16, the rest set for
   the toy scale).
3. Held-out *neutral* stills with content-only prompts, the same seeds, sampled
   as base / style / motion / both.
4. The look (``look.look_distance`` between a condition's samples and the same
   scenes rendered in the target look, pooled; from frame 1 on: frame 0 is the
   conditioning still itself) and the camera (``camera.measure``), and the
   checks of the seed's claim.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import camera, frechet, look, progress
from ..progress import OnEvent
from . import footage

CONDITIONS = ("base", "style", "motion", "both")
STYLE, MOTION = "toy-teal-orange", "toy-pan-right"

# The trainer settings for the toy scale (TrainConfig fields; everything else keeps the product's defaults).
# The method is the seed's (rank 8, alpha 16, AdamW, cosine with warm-up); the learning rate, steps and batch are
# what 64 x 112 footage and a 2 M-parameter transformer need to learn in a couple of minutes on two CPU cores.
TRAINING: dict[str, Any] = {
    "rank": 8, "alpha": 16.0, "learning_rate": 5e-3, "grad_accum": 1, "window": 17, "area": 64 * 112,
    "shift": 3.0, "seed": 0,
    # Held-out validation samples and scores with CLIP and LPIPS, which have no weights here: it would say
    # nothing and cost minutes. The learning is judged by the look and camera measurements instead.
    "val_fraction": 0.0, "early_stopping": False, "metric_weights": "random",
    # Toy activations are tiny: recomputing them costs more time than the memory is worth.
    "gradient_checkpointing": False,
}
# Measured on the toy model (docs/toy.md): 16 frames from each clip (the product's default is 4) with the demo's
# 32 stills let the style adapter learn the grade rather than the training scenes; 64 stills did no better. Steps
# and regrades were chosen on 8 other held-out stills (Evaluation(eval_seed=992), not the test's): past 150 steps it
# learns the scenes and loses the grade on new ones (share of the look gap closed, 75 to 600 steps: 0.28 0.31 0.36
# 0.24 0.20), and three regrades of each frame instead of one took the share from 0.27 to 0.44 (six: 0.42). The
# motion stage's 1,200 steps: beside that stronger style, both's move at 600 steps fell to the limit on the test's
# stills (1.496 px/frame, 1.501 needed); on the other stills 600 / 900 / 1,200 steps gave both 1.12 / 1.22 / 1.34,
# and took both's look from 0.22 to 0.19 / 0.11 of the gap there (docs/toy.md).
STAGE_TRAINING: dict[str, dict[str, Any]] = {"style": {"steps": 150, "batch_size": 4, "style_frames_per_clip": 16,
                                                       "style_regrades": 3},
                                             "motion": {"steps": 1200, "batch_size": 2}}


def train_settings(stage: str, name: str, model: str, data: Path, work: Path, **changes: Any) -> dict[str, Any]:
    """TrainConfig values for one stage of the recipe."""
    settings = {**TRAINING, **STAGE_TRAINING[stage], "model": model, "data": str(data), "stage": stage, "name": name,
                "cache_dir": str(work / "cache"), "runs_dir": str(work / "runs"), "loras_dir": str(work / "loras"),
                "overwrite": True}
    return {**settings, **changes}


def train_flags(settings: dict[str, Any]) -> list[str]:
    """The same settings as ``python -m cinescene train`` flags (flag names from TrainConfig's fields)."""
    from ..training.config import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    flags: list[str] = []
    for key, value in settings.items():
        flag = fields[key].metadata.get("flag") or "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        else:
            flags += [flag, str(value)]
    return flags


DEMO_DESCRIPTIONS = {
    "style": "toy demo look: the teal-orange grade, learnt from `toy-data --demo` stills and frames (rank 8, alpha "
             "16, style stage of evidence.TRAINING); made by scripts/train_toy_model.py",
    "motion": "toy demo move: the camera pans right, learnt from `toy-data --demo` clips with content-only captions "
              "(rank 8, alpha 16, motion stage of evidence.TRAINING); made by "
              "scripts/train_toy_model.py",
}


def make_demo_adapters(model: str, work: Path, loras: Path, steps_scale: float = 1.0) -> list[str]:
    """The demo set, then the style and motion adapters of the recipe, published into ``loras``.

    The same settings as the learning test gives ``python -m cinescene train`` (``train_flags``);
    ``steps_scale`` shortens both stages (the suite's quick run).
    """
    from ..training import config as train_config
    from ..training.trainer import Trainer

    data = work / "demo"
    footage.make_dataset(data, footage.DEMO)
    made = []
    for stage, name in (("style", STYLE), ("motion", MOTION)):
        steps = max(1, round(STAGE_TRAINING[stage]["steps"] * steps_scale))
        settings = train_settings(stage, name, model, data, work, loras_dir=str(loras), steps=steps,
                                  description=DEMO_DESCRIPTIONS[stage])
        result = Trainer(train_config.build({}, **settings)).run()
        made += [s.output for s in result.stages]
    return made


@dataclass(frozen=True)
class Evaluation:
    """What is sampled and how it is measured."""

    # 8 stills: on 4 the style effect measured +0.31 of the gap where 8 gave +0.01 (per-sample means; one
    # scene's sample can move the mean by more than the effect).
    stills: int = field(default=8, metadata={"help": "held-out neutral stills to sample"})
    seeds: tuple[int, ...] = field(default=(0, 1), metadata={"help": "sampling seeds, each on every still"})
    steps: int = 12
    guidance: float = 1.0
    frames: int = 17
    look_from_frame: int = 1
    eval_seed: int = field(default=991, metadata={"help": "which stills: the learning test's are 991, the recipe "
                                                          "was tuned on 992"})
    target_look: str = "teal-orange"
    target_move: str = "pan-right"
    motion_leak_fraction: float = 0.25  # how much of the style effect the motion adapter may move the look
    height: int = 64
    width: int = 112
    extra: dict[str, Any] = field(default_factory=dict)

    def scenes(self) -> list[footage.Scene]:
        return [footage.random_scene(np.random.default_rng([self.eval_seed, i]), self.width / self.height)
                for i in range(self.stills)]


def sample_conditions(model: Any, library: Any, evaluation: Evaluation = Evaluation(),
                      style: str = STYLE, motion: str = MOTION, on_event: OnEvent | None = None
                      ) -> dict[str, list[dict[str, Any]]]:
    """Every condition on every held-out still and seed (one loaded pipeline, adapters hot-swapped)."""
    from PIL import Image

    from ..sampler import sample
    from ..settings import AdapterChoice, SampleSettings

    adapters = {"base": (), "style": (AdapterChoice("style", style),), "motion": (AdapterChoice("motion", motion),),
                "both": (AdapterChoice("style", style), AdapterChoice("motion", motion))}
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in CONDITIONS}
    total, done = evaluation.stills * len(evaluation.seeds) * len(CONDITIONS), 0
    for index, scene in enumerate(evaluation.scenes()):
        still = footage.render_clip(scene, "neutral", "static", 1, evaluation.height, evaluation.width)[0]
        for seed in evaluation.seeds:
            for condition in CONDITIONS:
                settings = SampleSettings(prompt=footage.describe(scene), negative_prompt="", seed=seed,
                                          steps=evaluation.steps, frames=evaluation.frames,
                                          guidance=evaluation.guidance, preset="toy", height=evaluation.height,
                                          width=evaluation.width, adapters=adapters[condition])
                frames = sample(model, Image.fromarray(still), settings, library=library).frames
                out[condition].append({"still": index, "seed": seed, "frames": frames})
                done += 1
                progress.report(on_event, "sampling the four conditions", done, total)
    return out


def measure(samples: dict[str, list[dict[str, Any]]], target_clips: list[np.ndarray],
            evaluation: Evaluation = Evaluation()) -> dict[str, Any]:
    """Look distance to the held-out scenes in the target look, camera motion along the target move, per condition.

    ``look_to_target`` is the distance between two pools: every sample's frames of a condition against the
    same scenes rendered in the target look, each scene counted once per seed (a set against a set, as FID
    compares sets). Per sample, the distance to its own scene is kept beside it: a single sample's colours
    depend on what it smeared or invented, and its distance moves by more than the look does (per-sample
    means, 8 stills: paired standard error of the style effect 94 on a gap of 622).

    ``look_to_base`` is the pooled distance to the base's samples of the same stills and seeds (what the
    condition changes), and ``look_to_own_look`` to the same scenes in the stills' own look (neutral) with
    the target move (what a motion adapter alone should give).
    """
    start = evaluation.look_from_frame

    def renders(grade: str) -> list[np.ndarray]:
        return [footage.render_clip(s, grade, evaluation.target_move, evaluation.frames, evaluation.height,
                                    evaluation.width)[start:] for s in evaluation.scenes()]

    references, own = renders(evaluation.target_look), renders("neutral")
    speed = float(np.mean([camera.measure(c).along(evaluation.target_move) for c in target_clips]))
    results: dict[str, Any] = {"target": {"look": evaluation.target_look, "move": evaluation.target_move,
                                          "footage_speed_px_per_frame": speed}}
    pools: dict[str, look.LabStats] = {}
    for condition, items in sorted(samples.items(), key=lambda kv: kv[0] != "base"):  # the base's pool first
        rows = []
        for item in items:
            frames = item["frames"]
            paired = look.look_distance(frames[start:], references[item["still"]])
            motion = camera.measure(frames)
            rows.append({"still": item["still"], "seed": item["seed"], "look_to_target": paired["distance"],
                         "saturation": paired["saturation"], "contrast": paired["contrast"],
                         "dx": motion.dx, "dy": motion.dy, "zoom": motion.zoom,
                         "along_target": motion.along(evaluation.target_move), "label": motion.label})
        # Ordered by still and seed: every pool below holds the same scenes in the same order, whatever order the
        # samples were drawn in (a look distance takes an evenly strided subset of a large pool).
        ordered = sorted(items, key=lambda item: (item["still"], item["seed"]))
        pool = pools[condition] = look.lab_stats(np.concatenate([item["frames"][start:] for item in ordered]))

        def distance(reference: np.ndarray | look.LabStats, pool: look.LabStats = pool) -> float:
            other = reference if isinstance(reference, look.LabStats) else look.lab_stats(reference)
            return frechet.distance(pool.fit, other.fit)

        results[condition] = {
            "look_to_target": distance(np.concatenate([references[item["still"]] for item in ordered])),
            "look_to_base": distance(pools["base"]),
            "look_to_own_look": distance(np.concatenate([own[item["still"]] for item in ordered])),
            "look_to_target_per_sample": float(np.mean([r["look_to_target"] for r in rows])),
            "along_target": float(np.mean([r["along_target"] for r in rows])),
            "along_target_spread": float(np.std([r["along_target"] for r in rows])),
            "samples": rows,
        }
    return results


def checks(results: dict[str, Any], evaluation: Evaluation = Evaluation()) -> dict[str, dict[str, Any]]:
    """The seed's claim as numbers: each adapter does its job and leaves the other's alone; both give both."""
    base, style, motion, both = (results[c] for c in CONDITIONS)
    gap = base["look_to_target"]
    style_effect = gap - style["look_to_target"]
    need_px = 0.5 * results["target"]["footage_speed_px_per_frame"]
    spread = base["along_target_spread"]
    out = {
        "style closes half the look gap": {"closed": style_effect / gap, "need": 0.5},
        "motion moves half the target speed": {"shift_px": motion["along_target"] - base["along_target"],
                                               "need_px": need_px},
        "style leaves the camera alone": {"shift_px": abs(style["along_target"] - base["along_target"]),
                                          "base_spread_px": spread},
        # The look change is the distance between the two conditions' samples (same stills, same seeds), as the
        # camera change is the difference of the two motions. Not the change of the distance to the target: the
        # base's samples lose the still's colours as they smear, and a motion adapter that carries the still
        # further into the shot changed that distance by 87 while its samples were nearer the still's own
        # look than the base's (14 against 51, docs/toy.md). Both are in evidence.json.
        "motion leaves the look alone": {"change": motion["look_to_base"],
                                         "limit": evaluation.motion_leak_fraction * style["look_to_base"],
                                         "change_in_distance_to_target": abs(motion["look_to_target"] - gap)},
        "both give the look": {"closed": (gap - both["look_to_target"]) / gap, "need": 0.5},
        "both give the move": {"shift_px": both["along_target"] - base["along_target"], "need_px": need_px},
    }
    out["style closes half the look gap"]["pass"] = out["style closes half the look gap"]["closed"] >= 0.5
    out["motion moves half the target speed"]["pass"] = out["motion moves half the target speed"]["shift_px"] >= need_px
    out["style leaves the camera alone"]["pass"] = out["style leaves the camera alone"]["shift_px"] < spread
    out["motion leaves the look alone"]["pass"] = (out["motion leaves the look alone"]["change"]
                                                   < out["motion leaves the look alone"]["limit"])
    out["both give the look"]["pass"] = out["both give the look"]["closed"] >= 0.5
    out["both give the move"]["pass"] = out["both give the move"]["shift_px"] >= need_px
    return out


def run_checks(model_name: str, loras: Path, data: Path, out: Path, evaluation: Evaluation = Evaluation(),
               on_event: OnEvent | None = None) -> dict[str, Any]:
    """Sample the four conditions, measure them against the target footage, check the claim; write the evidence.

    Writes ``evidence.json`` (every number, every sample's measurements, the checks) and
    ``contact_sheet.png`` into ``out``; returns what ``evidence.json`` holds.
    """
    from .. import atomic, media
    from ..adapters import AdapterLibrary
    from ..loading import load_model
    from ..settings import ModelSpec

    model = load_model(ModelSpec(model=model_name, device="cpu"))
    library = AdapterLibrary(loras)
    samples = sample_conditions(model, library, evaluation, on_event=on_event)
    clips = [media.read_video(p).frames for p in sorted(data.glob("*.mp4"))]
    results = measure(samples, clips, evaluation)
    verdict = checks(results, evaluation)
    evidence = {"model": model_name, "evaluation": dataclasses.asdict(evaluation), "results": results,
                "checks": verdict, "passed": all(c["pass"] for c in verdict.values())}
    atomic.write_json(out / "evidence.json", evidence)
    contact_sheet(samples, out / "contact_sheet.png", evaluation)
    return evidence


def summary_lines(evidence: dict[str, Any]) -> list[str]:
    """The table a reader wants: per condition the look distance and the camera motion, then the checks."""
    results = evidence["results"]
    target = results["target"]
    speed = target["footage_speed_px_per_frame"]
    lines = [f"target footage: {target['look']}, {target['move']} at {speed:.2f} px/frame",
             f"{'condition':<10}{'look distance':>15}{'motion along target (px/frame)':>33}"]
    for condition in CONDITIONS:
        r = results[condition]
        lines.append(f"{condition:<10}{r['look_to_target']:>15.2f}{r['along_target']:>22.2f} ± "
                     f"{r['along_target_spread']:.2f}")
    for name, check in evidence["checks"].items():
        numbers = ", ".join(f"{k} {v:.3f}" for k, v in check.items() if k != "pass")
        lines.append(f"{'PASS' if check['pass'] else 'FAIL'}  {name} ({numbers})")
    return lines


def contact_sheet(samples: dict[str, list[dict[str, Any]]], path: Path, evaluation: Evaluation = Evaluation(),
                  stills: int = 2, scale: int = 2) -> Path:
    """Rows per still: the target (its scene in the target look and move), then base / style / motion / both."""
    from PIL import Image, ImageDraw

    from .. import atomic

    columns = list(range(0, evaluation.frames, 4))
    h, w = evaluation.height, evaluation.width
    rows: list[tuple[str, np.ndarray]] = []
    for index, scene in enumerate(evaluation.scenes()[:stills]):
        target = footage.render_clip(scene, evaluation.target_look, evaluation.target_move, evaluation.frames, h, w)
        rows.append((f"target: {evaluation.target_look}, {evaluation.target_move}", target))
        for condition in CONDITIONS:
            item = next(i for i in samples[condition] if i["still"] == index and i["seed"] == evaluation.seeds[0])
            rows.append((condition, item["frames"]))
    margin = 14
    sheet = Image.new("RGB", (w * len(columns) * scale, len(rows) * (h * scale + margin)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, frames) in enumerate(rows):
        y = r * (h * scale + margin)
        draw.text((4, y + 1), f"{label}   (frames {', '.join(map(str, columns))})", fill="black")
        strip = np.concatenate([frames[c] for c in columns], 1)
        sheet.paste(Image.fromarray(strip).resize((strip.shape[1] * scale, h * scale), Image.NEAREST), (0, y + margin))
    with atomic.atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
