"""The two-stage trainer: style from stills and frames, then motion from clips (under the frozen style if asked).

One loop serves both stages (and full fine-tuning), on one device or many
through accelerate. A model with two experts (Wan2.2 I2V A14B) trains them in
turn within each stage, each only on the timesteps it denoises at sampling
(``objective.expert_range``), and publishes one adapter per expert. Everything
a run decides goes to its JSONL log; only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import architecture, atomic, experts, lora_formats, progress
from ..adapters import AdapterLibrary, check_name
from ..architecture import SINGLE, defaults_for
from ..errors import CinesceneError, InputError
from ..faults import failpoint
from ..loading import LoadedModel, load_model, text_length
from ..settings import DEFAULT_NEGATIVE_PROMPT, PRESETS, ModelSpec
from . import checkpoints, early_stopping, held_out, publish, trainable, weights
from .config import TrainConfig
from .dataset import Dataset, scan
from .latent_cache import BucketBatches, CachedSamples, LatentCache, Sample, component_id, samples_for
from .log import TrainLog
from .objective import TimestepSampler, expert_range, flow_matching_loss
from .units import Unit, plan_units, range_for_log, set_other_experts, stage_seed, step_seed
from .units import stage_dir as unit_dir


@dataclass
class StageResult:
    stage: str
    output: str  # adapter name, or model folder for full fine-tuning
    steps_done: int
    best_step: int | None
    best_scores: dict[str, float] | None
    stopped: str  # "finished" | "early_stop" | "interrupted"
    expert: str = SINGLE

    @classmethod
    def of(cls, stage: str, state: dict[str, Any], output: str, stopped: str, expert: str) -> StageResult:
        """What a stage did, as its state (what checkpoints save) says."""
        return cls(stage, output, state["step"], early_stopping.best_step(state), early_stopping.best_scores(state),
                   stopped, expert)


@dataclass
class TrainResult:
    stages: list[StageResult] = field(default_factory=list)
    cache_stats: dict[str, int] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)


class Trainer:
    def __init__(self, config: TrainConfig, on_event: progress.OnEvent | None = None,
                 library: AdapterLibrary | None = None) -> None:
        self.config = config
        self.on_event = on_event
        self.library = library or AdapterLibrary(config.loras_dir)
        self.stop_requested = False
        self.accelerator: Any = None
        self.log: TrainLog | None = None
        self.model: LoadedModel | None = None  # set by run(); open for inspection
        self.unit: Unit | None = None  # the unit training now

    # -- plumbing ------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the loop to checkpoint and stop after the current optimizer step (SIGTERM, Ctrl-C, UI)."""
        self.stop_requested = True

    def emit(self, event: dict[str, Any]) -> None:
        assert self.log is not None
        event = self.log.write(event)
        if self.on_event and self.accelerator.is_main_process:
            self.on_event(event)

    def family(self) -> architecture.Family:
        """The model's family: the loaded pipeline's once loaded, else read from its files (Wan2.1 if unreadable)."""
        if self.model is not None:
            return self.model.family
        try:
            return architecture.family(self.config.model)
        except CinesceneError:
            return architecture.WAN21  # the load reports what is wrong; the units are worked out again after it

    def units(self) -> list[Unit]:
        """Stage by stage, expert by expert: style (each expert), then motion (each expert)."""
        return plan_units(self.config, self.family())

    # -- the run -------------------------------------------------------------------------------------------

    def check_outputs(self) -> None:
        """Refuse to overwrite a finished adapter or model unless asked, before any work."""
        c = self.config
        family = self.family()
        if c.method == "full" and family.two_experts:
            raise InputError(f"{c.model} has two experts; full fine-tuning is for one-expert models (train LoRAs)")
        for unit in self.units():
            name = unit.adapter
            check_name(name)  # the expert's suffix must fit too, before hours of training
            if c.method == "lora" and self.library.find(name) is not None and not (c.overwrite or c.resume):
                raise InputError(f"an adapter named {name!r} already exists; choose another --name, or --overwrite")
            if c.method == "full" and (Path(c.models_dir) / name).exists() and not (c.overwrite or c.resume):
                raise InputError(f"a model folder {Path(c.models_dir) / name} already exists; use --overwrite")
        if c.stage == "motion" and c.method == "lora" and c.style_adapter:
            for unit in self.units():
                self.library.get(publish.adapter_name(c.style_adapter, unit.expert), kind="style")

    def run(self) -> TrainResult:
        try:
            return self._run()
        except Exception as err:
            # The log is what the app and a later reader see: say why the run ended.
            if self.log is not None and self.accelerator is not None:
                self.emit({"type": "failed", "error": f"{type(err).__name__}: {err}"[:500]})
            raise

    def make_accelerator(self, precision: str) -> Any:
        """The run's Accelerator; a distributed launch (torchrun, accelerate launch) configures it from the env."""
        from accelerate import Accelerator

        return Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available(),
                           gradient_accumulation_steps=self.config.grad_accum)

    def _run(self) -> TrainResult:
        from accelerate.utils import set_seed

        c = self.config
        self.check_outputs()
        dataset = scan(c.data, stage=c.stage, window=c.window, fps=c.fps, val_fraction=c.val_fraction,
                       skip_bad=c.skip_bad, min_held_out=c.val_items)
        cuda = torch.cuda.is_available()
        precision = c.mixed_precision if c.mixed_precision != "auto" else ("bf16" if cuda else "no")
        self.accelerator = accelerator = self.make_accelerator(precision)
        set_seed(c.seed)
        self.log = TrainLog(c.run_dir() / "log.jsonl", enabled=accelerator.is_main_process)
        self.emit({"type": "start", "config": c.to_dict(), "dataset": dataset.summary(),
                   "processes": accelerator.num_processes, "mixed_precision": precision})
        model = self.model = load_model(ModelSpec(model=c.model, device=str(accelerator.device)))
        self.check_outputs()  # again, with the loaded pipeline's own experts
        units = self.units()
        result = TrainResult(dataset=dataset.summary())
        area = area_for(c)
        stages = list(dict.fromkeys(u.stage for u in units))
        style_condition = c.style_condition
        if model.family.expand_timesteps and style_condition != "blank":
            # TI2V writes a given first frame into the latents themselves: a single frame given as its own
            # first frame leaves nothing to denoise, so style frames are learned as TI2V makes video from text.
            style_condition = "blank"
            self.emit({"type": "note", "text": f"{c.model} writes the first frame into the latents: style frames "
                                               "are trained without one (style condition blank)"})
        samples = {s: samples_for(dataset.train, s, window=c.window, fps=c.fps,
                                  style_frames_per_clip=c.style_frames_per_clip, area=area,
                                  style_condition=style_condition, style_regrades=c.style_regrades,
                                  motion_regrades=c.motion_regrades,
                                  multiple=model.size_multiple) for s in stages}
        val = {s: samples_for(dataset.validation, s, window=c.window, fps=c.fps, style_frames_per_clip=1, area=area,
                              validation=True, multiple=model.size_multiple)[:c.val_items] for s in stages}
        cache = LatentCache(c.cache_dir or Path(c.data) / ".cinescene-cache", component_id(model.pipe, c.model), c.fps,
                           text_length(model.pipe))
        result.cache_stats = self.build_cache(model, cache, [x for s in stages for x in samples[s] + val[s]])
        if c.offload_encoders and cuda:
            # Training needs only the transformer (and the VAE to decode validation samples).
            model.pipe.text_encoder.to("cpu")
            if model.pipe.image_encoder is not None:
                model.pipe.image_encoder.to("cpu")
            torch.cuda.empty_cache()
        if not c.resume and accelerator.is_main_process:
            # A new run under an old run's name: the old stages' records must not mark this one's finished.
            for unit in units:
                (self.stage_dir(unit) / checkpoints.FINISHED_FILE).unlink(missing_ok=True)
        # What each expert carries from this run so far, by stage: a motion unit trains against its expert's
        # published style, and the other experts sample validation shots with what they have published.
        published: dict[str, dict[str, str]] = {
            e: ({"style": publish.adapter_name(c.style_adapter, e)} if c.style_adapter and c.stage == "motion"
                else {}) for e in model.family.experts}
        for unit in units:
            if not samples[unit.stage]:
                raise InputError(f"the {unit.stage} stage has no samples: {dataset.root} lacks usable "
                                 + ("clips long enough for a window" if unit.stage == "motion"
                                    else "stills or clips"))
            outcome = self.train_stage(model, cache, unit, samples[unit.stage], val[unit.stage], dataset, published)
            result.stages.append(outcome)
            if outcome.stopped == "interrupted":
                break
            published[unit.expert][unit.stage] = outcome.output
            if len(model.family.experts) == 2 and accelerator.is_main_process and all(
                    unit.stage in published[e] for e in model.family.experts):
                publish.publish_pair(self.library, stage=unit.stage, name=unit.name,
                                     experts=experts.experts(model.pipe), base_model=c.model)
        self.emit({"type": "done" if result.stages and result.stages[-1].stopped != "interrupted" else "stopped",
                   "adapter": result.stages[-1].output if result.stages else None,
                   "stages": [dataclasses.asdict(s) for s in result.stages]})
        return result

    def build_cache(self, model: LoadedModel, cache: LatentCache, samples: list[Sample]) -> dict[str, int]:
        stats: dict[str, int] = {}
        # Rank 0 encodes; the others then find every entry on disk.
        with self.accelerator.main_process_first():
            self.emit({"type": "caching", "samples": len(samples)})
            stats = cache.build(model.pipe, samples, extra_captions=[DEFAULT_NEGATIVE_PROMPT],
                                on_event=self.on_event if self.accelerator.is_main_process else None)
        self.emit({"type": "cached", **stats})
        return stats

    # -- one stage -----------------------------------------------------------------------------------------

    def prepare_trainable(self, model: LoadedModel, stage: str, frozen_style: str | None,
                          expert: str = SINGLE) -> list[torch.nn.Parameter]:
        """This stage's trainable parameters on ``expert`` (``trainable.prepare``), on the run's device."""
        device = self.accelerator.device if self.accelerator is not None else None
        return trainable.prepare(self.config, model.pipe, self.library, stage, frozen_style, expert, device)

    def stage_dir(self, unit: Unit) -> Path:
        return unit_dir(self.config, unit)

    def train_stage(self, model: LoadedModel, cache: LatentCache, unit: Unit, samples: list[Sample],
                    val_samples: list[Sample], dataset: Dataset,
                    published: dict[str, dict[str, str]] | None = None) -> StageResult:
        from diffusers.optimization import get_scheduler

        c, accelerator, stage = self.config, self.accelerator, unit.stage
        published = published or {}
        run_dir = self.stage_dir(unit)
        ckpt_root = run_dir / "checkpoints"
        if c.resume and (record := checkpoints.finished(run_dir)) is not None:
            # Published before the interruption: nothing of this stage runs or is written again.
            done = StageResult(**record)
            self.emit({"type": "stage_done", "stage": stage, "expert": unit.expert, "adapter": done.output,
                       "steps_done": done.steps_done, "best_step": done.best_step, "stopped": done.stopped,
                       "already_finished": True})
            return done
        self.unit = unit
        transformer = experts.expert_module(model.pipe, unit.expert)
        transformer_class = type(transformer)  # FSDP2 swaps the class of the module it shards
        set_other_experts(self.library, model.pipe, unit, published)
        under_style = stage == "motion" and (c.stage == "motion" or c.motion_under_style)
        frozen_style = published.get(unit.expert, {}).get("style") if under_style else None
        params = self.prepare_trainable(model, stage, frozen_style, unit.expert)
        if c.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        optimizer = torch.optim.AdamW(params, lr=c.learning_rate, betas=tuple(c.adam_betas),
                                      weight_decay=c.weight_decay)
        # accelerate steps a prepared scheduler once per process; scale as the diffusers scripts do.
        lr_scheduler = get_scheduler(c.lr_scheduler, optimizer,
                                     num_warmup_steps=int(c.warmup_ratio * c.steps) * accelerator.num_processes,
                                     num_training_steps=c.steps * accelerator.num_processes)
        batches = BucketBatches(samples, c.batch_size, stage_seed(c.seed, unit.key))
        loader = torch.utils.data.DataLoader(CachedSamples(cache, samples), batch_sampler=batches, num_workers=0)
        self._register_hooks(stage)
        prepared, optimizer, loader, lr_scheduler = accelerator.prepare(transformer, optimizer, loader, lr_scheduler)
        params = [p for p in prepared.parameters() if p.requires_grad]  # FSDP shards replace the parameters
        state = early_stopping.new_state(stage, frozen_style)
        resumed_from = 0
        best_file = run_dir / weights.BEST_ADAPTER
        found = checkpoints.latest(ckpt_root) if c.resume else None
        if accelerator.is_main_process:
            # Only the best weights that go with the state may be restored at the end: on disk there may be
            # a later validation's (killed before its checkpoint) or an earlier run's.
            best_file.unlink(missing_ok=True)
            if found is not None and (found / checkpoints.BEST_FILE).is_file():
                _ensure(best_file.parent)
                with atomic.atomic_path(best_file) as tmp:
                    shutil.copyfile(found / checkpoints.BEST_FILE, tmp)
        accelerator.wait_for_everyone()
        if found is not None:
            state = checkpoints.load(accelerator, found)
            resumed_from = state["step"]
        timesteps = expert_range(unit.expert, model.pipe.config.boundary_ratio,
                                 model.pipe.scheduler.config.num_train_timesteps)
        self.emit({"type": "stage_start", "stage": stage, "name": unit.adapter, "expert": unit.expert,
                   "timesteps": range_for_log(timesteps), "steps": c.steps, "samples": len(samples),
                   "validation_samples": len(val_samples), "validation_seeds": c.val_seeds,
                   "trainable_parameters": sum(p.numel() for p in params), "resumed_from": resumed_from})
        sampler_t = TimestepSampler(c.shift, c.timestep_sampling, timestep_range=timesteps)
        patch = tuple(transformer.config.patch_size)
        per_epoch = len(loader)
        # A stage checkpointed as ended (last step, or early stop) trains and validates no more.
        stopped = state.get("stopped") or "finished"
        transformer.train()
        while state["step"] < c.steps and state.get("stopped") is None and stopped == "finished":
            epoch, offset = divmod(state["micro_step"], per_epoch)
            # The batch order is a function of the epoch, which is set here on the loader itself: the
            # prepared loader would otherwise set its own pass count (0 after a resume) on the sampler.
            loader.set_epoch(epoch)
            batches.set_epoch(epoch)
            epoch_loader = accelerator.skip_first_batches(loader, offset) if offset else loader
            started, losses = time.perf_counter(), []
            for batch in epoch_loader:
                with accelerator.accumulate(prepared):
                    generator = torch.Generator().manual_seed(
                        step_seed(c.seed, unit.key, accelerator.process_index, state["micro_step"]))
                    with accelerator.autocast():
                        loss = flow_matching_loss(prepared, batch, sampler_t, generator, patch)
                    accelerator.backward(loss)
                    grad_norm = None
                    if accelerator.sync_gradients:
                        grad_norm = accelerator.clip_grad_norm_(params, c.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                state["micro_step"] += 1
                losses.append(loss.detach().float())
                if not accelerator.sync_gradients:
                    continue
                state["step"] += 1
                mean_loss = accelerator.reduce(torch.stack(losses).mean(), reduction="mean").item()
                lr = lr_scheduler.get_last_lr()[0]
                self.emit({"type": "step", "stage": stage, "expert": unit.expert, "step": state["step"],
                           "loss": mean_loss, "lr": lr, "grad_norm": float(grad_norm or 0.0),
                           "step_time": time.perf_counter() - started, "memory_mb": _memory_mb()})
                if accelerator.is_main_process:
                    task = f"train {stage}" if unit.expert == SINGLE else f"train {stage} {unit.expert}"
                    progress.report(self.on_event, task, state["step"], c.steps, loss=mean_loss, lr=lr)
                started, losses = time.perf_counter(), []
                failpoint("train_step")
                stopped = self._after_step(model, cache, stage, state, val_samples, ckpt_root, run_dir)
                if stopped != "finished" or state.get("stopped") is not None:
                    break
        transformer.eval()
        accelerator.wait_for_everyone()
        if stopped == "interrupted":
            return StageResult.of(stage, state, unit.adapter, stopped, unit.expert)
        failpoint("stage_end")  # the stage's last checkpoint is written, nothing is published yet
        replicas = weights.replica_checksums(self.accelerator, params)
        output = self._finish(model, prepared, transformer_class, unit, state, run_dir, dataset, timesteps)
        result = StageResult.of(stage, state, output, stopped, unit.expert)
        failpoint("stage_published")
        if accelerator.is_main_process:
            checkpoints.mark_finished(run_dir, dataclasses.asdict(result))
        accelerator.wait_for_everyone()
        accelerator.free_memory()
        self.emit({"type": "stage_done", "stage": stage, "expert": unit.expert, "adapter": output,
                   "steps_done": state["step"],
                   "best_step": early_stopping.best_step(state), "stopped": stopped, "replica_checksums": replicas})
        return result

    def _after_step(self, model: LoadedModel, cache: LatentCache, stage: str, state: dict[str, Any],
                    val_samples: list[Sample], ckpt_root: Path, run_dir: Path) -> str:
        c, accelerator = self.config, self.accelerator
        outcome = "finished"
        if val_samples and (state["step"] % c.val_every == 0 or state["step"] == c.steps):
            if self._validate(model, cache, stage, state, val_samples, run_dir) and c.early_stopping:
                outcome = "early_stop"
                self.emit({"type": "early_stop", "stage": stage, "step": state["step"],
                           "best_step": early_stopping.best_step(state), "patience": c.patience,
                           "min_delta": c.min_delta})
            failpoint("validation")  # scored and best weights kept, not yet checkpointed
        # Every rank must agree on stopping, whoever received the signal.
        stop = torch.tensor(float(self.stop_requested), device=accelerator.device)
        if accelerator.reduce(stop, reduction="sum").item() > 0 and outcome == "finished":
            outcome = "interrupted"
        ended = outcome == "early_stop" or (outcome == "finished" and state["step"] >= c.steps)
        if ended:
            # Checkpointed as ended: a resume after this publishes without training or validating again.
            state["stopped"] = outcome
        if outcome == "interrupted" or ended or state["step"] % c.checkpoint_every == 0:
            path = checkpoints.save(accelerator, ckpt_root, state["step"], state, c.keep_checkpoints,
                                    files={checkpoints.BEST_FILE: run_dir / weights.BEST_ADAPTER})
            self.emit({"type": "checkpoint", "stage": stage, "step": state["step"], "path": str(path)})
        if outcome == "interrupted":
            self.emit({"type": "stopped", "stage": stage, "step": state["step"], "checkpoint": str(path)})
        return outcome

    # -- validation and early stopping ---------------------------------------------------------------------

    def _validate(self, model: LoadedModel, cache: LatentCache, stage: str, state: dict[str, Any],
                  samples: list[Sample], run_dir: Path) -> bool:
        """Score samples from the held-out items; keep the best weights. Returns True when patience ran out."""
        c, accelerator = self.config, self.accelerator
        if accelerator.is_main_process:
            scores, video = held_out.validate(
                model, cache, samples, self.config, self.accelerator,
                _ensure(run_dir / "validation") / f"step_{state['step']:07d}.mp4")
            summary = {k: v for k, v in scores.items() if k != "scores"}
            improved = early_stopping.record(state, summary, c)
            if improved and c.method == "lora":  # a best copy of all 14B weights would cost more than it gives
                weights.save_best(accelerator, self._trained_module(model), stage, run_dir)
            self.emit({"type": "validation", "stage": stage, "expert": self.unit.expert if self.unit else SINGLE,
                       "step": state["step"], **scores, "video": str(video),
                       "best": improved, "best_step": state["best"]["step"]})
        flags = torch.tensor([float(early_stopping.patience_ran_out(state, c))], device=accelerator.device)
        return bool(accelerator.reduce(flags, reduction="sum").item() > 0)

    # -- saving --------------------------------------------------------------------------------------------

    def _trained_module(self, model: LoadedModel) -> torch.nn.Module:
        """The expert the current unit trains."""
        return experts.expert_module(model.pipe, self.unit.expert if self.unit is not None else SINGLE)

    def _finish(self, model: LoadedModel, prepared: Any, transformer_class: type, unit: Unit,
                state: dict[str, Any], run_dir: Path, dataset: Dataset,
                timesteps: tuple[float, float] | None = None) -> str:
        """Put the best weights back and publish them: into the library, or as a transformer folder."""
        c, accelerator, stage, name = self.config, self.accelerator, unit.stage, unit.name
        if c.method == "lora" and c.keep_best:
            weights.restore_best(accelerator, self._trained_module(model), stage, run_dir)
        accelerator.wait_for_everyone()
        extra = {"hyperparameters": {k: v for k, v in c.to_dict().items() if k not in ("extra",)},
                 "best_step": early_stopping.best_step(state), "validation": early_stopping.best_scores(state),
                 "steps_done": state["step"],
                 "validation_history": state["history"], "frozen_style": state.get("frozen_style"),
                 # Which weights were published: the best validated ones, or the last (the study's matched arms).
                 "weights": "best" if c.method == "lora" and c.keep_best and state.get("best") else "last"}
        if unit.expert != SINGLE:
            extra.update(timesteps=range_for_log(timesteps), boundary_ratio=model.pipe.config.boundary_ratio)
        if c.method == "full":
            folder = Path(c.models_dir) / name
            weights.publish_transformer(accelerator, prepared, transformer_class, model.pipe.transformer.config,
                                        folder, {"base_model": c.model, "trained_on": dataset.summary(), **extra})
            return str(folder)
        if not accelerator.is_main_process:
            return unit.adapter
        transformer = accelerator.unwrap_model(self._trained_module(model))
        state_dict = weights.trainable_state(accelerator, self._trained_module(model), stage)
        canonical = lora_formats.from_peft(state_dict, c.rank, c.alpha)
        if c.resume and publish.published_already(self.library, name, unit.expert, stage, canonical):
            return unit.adapter  # killed after publishing, before marking the stage finished
        info = publish.publish_lora(self.library, canonical, stage=stage, name=name, expert=unit.expert,
                                    transformer=transformer, base_model=c.model, alpha=c.alpha,
                                    trained_on=dataset.summary(), extra=extra,
                                    description=c.description or f"trained by cinescene on {Path(c.data).name}")
        return info.name

    def _register_hooks(self, stage: str) -> None:
        self._stage = stage  # read by the hooks at call time, so one registration serves every stage
        if self.config.method == "lora" and not getattr(self, "_hooked", False):
            checkpoints.keep_only_lora(self.accelerator, lambda: self._stage)
            self._hooked = True


def _memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def area_for(config: TrainConfig) -> int:
    """Pixel area of the training buckets: explicit, else the preset's, else the model's default preset."""
    return config.area or PRESETS[config.preset or defaults_for(config.model).preset].area
