"""A study's report: ``report.json`` (everything), ``report.md`` (the tables a reader wants) and two plots.

Each metric per arm is the mean over the held-out items with its 95% paired bootstrap interval (``stats``), and
each difference between two arms likewise; FVD and FID are whole-set values with intervals from resampling the
items. The training cost comes from each arm's log and files (``cost``), the scores over the training steps
from the trainer's validations in the same log.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .. import atomic
from ..evaluate import BETTER, METRICS
from ..record import build_record
from ..training.config import TrainConfig
from ..training.log import read_log
from . import plots, stats
from .config import BASE, METHOD_SETTINGS, StudyConfig
from .evaluation import Evaluation
from .items import HeldOut

VALIDATION_SCORES = ("look", "lpips", "clip_text", "camera_dx")  # what the trainer's validations log
LOSS_POINTS = 60  # the training loss is drawn as means over this many stretches of steps
PLOTS = {"arms": "plots/arms.png", "training": "plots/training.png"}


def curves(config: TrainConfig) -> dict[str, Any]:
    """The validation scores and the training loss over the steps, from the run's log (each step's last record)."""
    events = read_log(config.run_dir() / "log.jsonl")
    validations = {e["step"]: e for e in events if e.get("type") == "validation"}
    losses = {e["step"]: float(e["loss"]) for e in events if e.get("type") == "step"}
    validation = [{"step": step, **{k: e.get(k) for name in VALIDATION_SCORES for k in (name, f"{name}_std")
                                    if e.get(k) is not None}} for step, e in sorted(validations.items())]
    steps = sorted(losses)
    size = max(1, math.ceil(len(steps) / LOSS_POINTS))
    loss = [[float(sum(chunk) / len(chunk)), sum(losses[s] for s in chunk) / len(chunk)]
            for chunk in (steps[i:i + size] for i in range(0, len(steps), size))]
    return {"validation": validation, "loss": loss, "calibrated": all(e.get("calibrated", True)
                                                                      for e in validations.values())}


def build(config: StudyConfig, arms: dict[str, TrainConfig], held: HeldOut, evaluation: Evaluation,
          costs: dict[str, dict[str, Any]], dataset: dict[str, Any], command: str | None) -> dict[str, Any]:
    """Everything the study found, as ``report.json`` holds it."""
    labels = [BASE, *arms]
    settings = stats.Bootstrap(config.bootstrap_resamples, config.distance_resamples, config.bootstrap_seed,
                               config.bootstrap_method)
    uncalibrated = set(evaluation.summary.get("uncalibrated", []))
    found: dict[str, Any] = {}
    not_computed = list(evaluation.not_computed)
    for name in METRICS:
        values = stats.item_values(evaluation.rows, labels, name, held.item_of)
        if values.shape[1] == 0:
            not_computed.append(f"{name} not computed: no held-out item has what it needs (a reference clip)")
            continue
        found[name] = {"better": BETTER[name], "calibrated": name not in uncalibrated,
                       **stats.metric_intervals(values, labels, settings),
                       "items": {arm: [float(v) for v in row] for arm, row in zip(labels, values)}}
    base_distances = evaluation.summary["variants"][BASE].get("distances", {})
    for name, entry in base_distances.items():
        assert evaluation.features is not None
        found[name] = {"better": BETTER[entry["name"].split("_")[0]], "calibrated": True,
                       "videos": entry["videos"], "reference_videos": entry["reference_videos"],
                       **stats.distance_intervals(name, evaluation.features, labels, evaluation.reference_positions,
                                                  held.item_of, settings)}
    first = next(iter(arms.values()))
    matched = {k: v for k, v in first.to_dict().items()
               if k in ("model", "data", "stage", "steps", "seed", "batch_size", "grad_accum", "window", "area",
                        "lr_scheduler", "warmup_ratio", "val_every", "val_items", "val_seeds", "val_steps")}
    return build_record(
        kind="study", model={"id": first.model}, settings=config.to_dict(), command=command, arms=labels,
        training={"matched": matched, "dataset": dataset,
                  "arms": {arm: {k: c.to_dict()[k] for k in METHOD_SETTINGS if c.method == "lora" or
                                 k not in ("rank", "alpha", "fp8_base")} for arm, c in arms.items()},
                  "weights": "last (no early stopping, for every arm)"},
        held_out={"source": held.source, "items": len(held.items), "seeds": list(held.seeds),
                  "videos_per_arm": len(held.items) * len(held.seeds), "files": held.files,
                  "reference_camera": evaluation.reference_camera},
        bootstrap={"resamples": settings.resamples, "distance_resamples": settings.distance_resamples,
                   "seed": settings.seed, "method": settings.method, "confidence": stats.CONFIDENCE,
                   "unit": "held-out item (its mean over the seeds)"},
        metrics=found, not_computed=not_computed, uncalibrated=sorted(uncalibrated),
        networks=evaluation.summary.get("networks"), cost=costs,
        curves={arm: curves(c) for arm, c in arms.items()}, plots=PLOTS,
        files={"eval": "eval/results.csv", "held_out": "held_out/set.jsonl"})


def _decimals(value: float | None) -> int:
    """Four significant decimals for small numbers, fewer for large ones (a look distance of 518.7)."""
    if value is None or not math.isfinite(value):
        return 4
    return 1 if abs(value) >= 100 else 2 if abs(value) >= 10 else 4


def _fmt(value: float | None, decimals: int = 4) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def _cell(entry: dict[str, Any]) -> str:
    """``mean [low, high]``, all three at the precision of the largest (7.5 [-114.4, 123.4])."""
    low, high = entry["ci95"]
    decimals = min(_decimals(v) for v in (entry["mean"], low, high))
    interval = f" [{_fmt(low, decimals)}, {_fmt(high, decimals)}]" if low is not None and high is not None else ""
    return _fmt(entry["mean"], decimals) + interval


def _title(name: str, entry: dict[str, Any]) -> str:
    return name + ("" if entry["calibrated"] else " (uncalibrated)")


def tables(report: dict[str, Any]) -> list[str]:
    """The per-arm table, the differences and the cost table: what the docs quote of a study."""
    arms, found = report["arms"], report["metrics"]
    pairs = list(next(iter(found.values()))["differences"]) if found else []
    lines = ["| metric | better | " + " | ".join(arms) + " |", "|---|---|" + "---|" * len(arms)]
    for name, entry in found.items():
        lines.append(f"| {_title(name, entry)} | {entry['better'] or '-'} | "
                     + " | ".join(_cell(entry["arms"][arm]) for arm in arms) + " |")
    lines += ["", "| metric | " + " | ".join(pairs) + " |", "|---|" + "---|" * len(pairs)]
    for name, entry in found.items():
        lines.append(f"| {_title(name, entry)} | " + " | ".join(_cell(entry["differences"][p]) for p in pairs) + " |")
    lines += ["", "| arm | trainable parameters | steps | training time (s) | wall time (s) | peak memory (MB) | "
              "output on disk (MB) | last checkpoint (MB) |", "|---|---|---|---|---|---|---|---|"]
    for arm, cost in report["cost"].items():
        trainable = f"{cost['trainable_parameters']:,}" if cost["trainable_parameters"] is not None else "n/a"
        lines.append(f"| {arm} | {trainable} | {cost['steps']} | {cost['train_seconds']:.1f} | "
                     f"{cost['wall_seconds']:.1f} | {cost['peak_memory_mb']:,.0f} | {cost['output_mb']:.2f} | "
                     f"{_fmt(cost['checkpoint_mb'], 2)} |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    t, held, boot = report["training"], report["held_out"], report["bootstrap"]
    m, data = t["matched"], t["dataset"]
    differ = [k for k in METHOD_SETTINGS if all(k in s for s in t["arms"].values())
              and len({str(s[k]) for s in t["arms"].values()}) > 1]
    own = "; ".join(f"{arm}: " + ", ".join([*(["every transformer weight"] if arm == "full" else []),
                                            *(f"{k.replace('_', ' ')} {s[k]}" for k in s
                                              if k in differ or (k in ("rank", "alpha") and arm == "lora"))])
                    for arm, s in t["arms"].items())
    lines = ["# cinescene study: base against LoRA against full fine-tuning", ""]
    if report.get("command"):
        lines += ["Made by:", "", "```sh", report["command"], "```", ""]
    what = (f"{data['train_clips']} clips" if m["stage"] == "motion"
            else f"{data['train_clips']} clips and {data['train_stills']} stills")
    lines += [f"Model `{m['model']}`, stage `{m['stage']}`. Every arm trained on the same data "
              f"({what} from {m['data']}), {m['steps']} steps "
              f"of batch {m['batch_size']} x {m['grad_accum']}, seed {m['seed']}, no early stopping, and its last "
              f"weights are evaluated. What differs: {own}.",
              "",
              f"Held out: {held['items']} items ({held['source']}) under seeds "
              f"{', '.join(map(str, held['seeds']))}: {held['videos_per_arm']} videos an arm, the same items and "
              f"seeds for every arm.", "",
              "## Results", "",
              f"Means over the held-out items with 95% intervals from a paired bootstrap over the items "
              f"({boot['resamples']:,} resamples, {boot['distance_resamples']:,} for FVD and FID; {boot['method']}; "
              f"seed {boot['seed']}); an item's value is its mean over the seeds. Differences are taken item by "
              "item, over the same draws.", "", *tables(report), ""]
    camera = held.get("reference_camera")
    if camera:
        lines += [f"The held-out clips themselves move dx {camera['dx']:+.2f}, dy {camera['dy']:+.2f} px/frame, zoom "
                  f"{camera['zoom']:.4f} per frame (camera_* compares with these).", ""]
    if report["not_computed"] or report["uncalibrated"]:
        lines += ["## Not computed, and uncalibrated", ""]
        lines += [f"- {note.rstrip('.')}." for note in report["not_computed"]]
        if report["uncalibrated"]:
            lines.append(f"- Uncalibrated (random network weights): {', '.join(report['uncalibrated'])}. These "
                         "numbers only show that the pipeline runs; compare the arms on the others.")
        lines.append("")
    lines += ["Training time is the sum of the optimizer steps' own times; wall time covers every session of the run "
              "(loading, encoding the data, validating). Peak memory is what the trainer logs: CUDA's peak allocated, "
              "or on a CPU the process's peak resident size with the runtime and loaded models (reset before each "
              "arm).", "",
              "## Plots", "",
              f"![each metric per arm, with its interval]({report['plots']['arms']})", "",
              f"![validation scores and training loss over the steps]({report['plots']['training']})", "",
              f"Validation (the trainer's): the first {m['val_items']} held-out items x {m['val_seeds']} seed(s), "
              f"{m['val_steps']} denoising steps, every {m['val_every']} steps.", ""]
    return "\n".join(lines)


def draw(report: dict[str, Any], out: Path) -> None:
    arms, found = report["arms"], report["metrics"]
    camera = report["held_out"].get("reference_camera") or {}
    panels = [plots.IntervalPanel(_title(name, entry), arms, [entry["arms"][a]["mean"] for a in arms],
                                  [entry["arms"][a]["ci95"][0] for a in arms],
                                  [entry["arms"][a]["ci95"][1] for a in arms],
                                  camera.get(name.removeprefix("camera_")) if name.startswith("camera_") else None)
              for name, entry in found.items()]
    plots.interval_chart(panels, out / PLOTS["arms"], "each metric per arm: mean over the held-out items, 95% interval "
                         "(dashed: the held-out clips' own camera motion)")
    lines = []
    for score in VALIDATION_SCORES:
        series = {arm: [(v["step"], v[score]) for v in c["validation"] if v.get(score) is not None]
                  for arm, c in report["curves"].items()}
        calibrated = score in ("look", "camera_dx") or all(c["calibrated"] for c in report["curves"].values())
        lines.append(plots.LinePanel(f"validation {score}" + ("" if calibrated else " (uncalibrated)"), series))
    lines.append(plots.LinePanel("training loss", {arm: [tuple(p) for p in c["loss"]]
                                                   for arm, c in report["curves"].items()}))
    plots.line_chart(lines, out / PLOTS["training"], "over the training steps")


def write(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """``report.json``, ``report.md`` and the plots in ``out``."""
    draw(report, out)
    paths = {"json": out / "report.json", "markdown": out / "report.md",
             **{k: out / v for k, v in PLOTS.items()}}
    atomic.write_json(paths["json"], report)
    atomic.write_text(paths["markdown"], markdown(report))
    return paths
