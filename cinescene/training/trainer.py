"""The two-stage trainer: style from stills and frames, then motion from clips with the style frozen.

One loop serves both stages (and full fine-tuning), on one device or many
through accelerate. Everything a run decides goes to its JSONL log; only rank
0 writes files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import atomic, lora_formats, progress, slots
from ..adapters import AdapterLibrary
from ..architecture import defaults_for
from ..errors import InputError
from ..faults import failpoint
from ..loading import LoadedModel, load_model, text_length
from ..placement import enable_fp8_storage
from ..settings import DEFAULT_NEGATIVE_PROMPT, PRESETS, ModelSpec
from . import checkpoints, held_out
from .config import TrainConfig
from .dataset import Dataset, scan
from .latent_cache import BucketBatches, CachedSamples, LatentCache, Sample, component_id, samples_for
from .log import TrainLog
from .objective import TimestepSampler, flow_matching_loss


@dataclass
class StageResult:
    stage: str
    output: str  # adapter name, or model folder for full fine-tuning
    steps_done: int
    best_step: int | None
    best_scores: dict[str, float] | None
    stopped: str  # "finished" | "early_stop" | "interrupted"


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

    # -- plumbing ------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the loop to checkpoint and stop after the current optimizer step (SIGTERM, Ctrl-C, UI)."""
        self.stop_requested = True

    def emit(self, event: dict[str, Any]) -> None:
        assert self.log is not None
        event = self.log.write(event)
        if self.on_event and self.accelerator.is_main_process:
            self.on_event(event)

    def stage_names(self) -> list[tuple[str, str]]:
        c = self.config
        if c.stage == "both":
            return [("style", f"{c.name}-style"), ("motion", f"{c.name}-motion")]
        return [(c.stage, c.name)]

    # -- the run -------------------------------------------------------------------------------------------

    def check_outputs(self) -> None:
        """Refuse to overwrite a finished adapter or model unless asked, before any work."""
        c = self.config
        for _, name in self.stage_names():
            if c.method == "lora" and self.library.find(name) is not None and not (c.overwrite or c.resume):
                raise InputError(f"an adapter named {name!r} already exists; choose another --name, or --overwrite")
            if c.method == "full" and (Path(c.models_dir) / name).exists() and not (c.overwrite or c.resume):
                raise InputError(f"a model folder {Path(c.models_dir) / name} already exists; use --overwrite")
        if c.stage == "motion" and c.method == "lora" and c.style_adapter:
            self.library.get(c.style_adapter, kind="style")

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
        result = TrainResult(dataset=dataset.summary())
        area = area_for(c)
        stages = [s for s, _ in self.stage_names()]
        samples = {s: samples_for(dataset.train, s, window=c.window, fps=c.fps,
                                  style_frames_per_clip=c.style_frames_per_clip, area=area,
                                  style_condition=c.style_condition) for s in stages}
        val = {s: samples_for(dataset.validation, s, window=c.window, fps=c.fps, style_frames_per_clip=1, area=area,
                              validation=True)[:c.val_items] for s in stages}
        cache = LatentCache(c.cache_dir or Path(c.data) / ".cinescene-cache", component_id(model.pipe, c.model), c.fps,
                           text_length(model.pipe))
        result.cache_stats = self.build_cache(model, cache, [x for s in stages for x in samples[s] + val[s]])
        if c.offload_encoders and cuda:
            # Training needs only the transformer (and the VAE to decode validation samples).
            model.pipe.text_encoder.to("cpu")
            model.pipe.image_encoder.to("cpu")
            torch.cuda.empty_cache()
        if not c.resume and accelerator.is_main_process:
            # A new run under an old run's name: the old stages' records must not mark this one's finished.
            for stage in stages:
                (self.stage_dir(stage) / checkpoints.FINISHED_FILE).unlink(missing_ok=True)
        previous: str | None = c.style_adapter
        for stage, name in self.stage_names():
            if not samples[stage]:
                raise InputError(f"the {stage} stage has no samples: {dataset.root} lacks usable "
                                 + ("clips long enough for a window" if stage == "motion" else "stills or clips"))
            outcome = self.train_stage(model, cache, stage, name, samples[stage], val[stage], dataset,
                                       frozen_style=previous if stage == "motion" else None)
            result.stages.append(outcome)
            if outcome.stopped == "interrupted":
                break
            previous = outcome.output
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

    def prepare_trainable(self, model: LoadedModel, stage: str, frozen_style: str | None) -> list[torch.nn.Parameter]:
        """Add this stage's LoRA (or unfreeze everything for full fine-tuning); freeze all else."""
        from accelerate.utils import set_seed
        from diffusers.training_utils import cast_training_params
        from peft import LoraConfig

        c, transformer = self.config, model.pipe.transformer
        for module in (model.pipe.vae, model.pipe.text_encoder, model.pipe.image_encoder):
            module.requires_grad_(False)
        if c.method == "full":
            # fp32 master weights, bf16 compute through autocast (accelerate's mixed precision; under FSDP
            # accelerate upcasts the same way and gathers bf16 copies per block). The transformer comes in
            # bf16 on a GPU, and there an AdamW update of 3e-5 on a weight of 0.02 is below half a bf16
            # step and rounds away. The price is memory: 16 bytes a weight (fp32 weight, gradient and two
            # moments) against 12 for bf16 weights and gradients; `cinescene plan --train --method full`.
            transformer.to(torch.float32)
            transformer.requires_grad_(True)
            return [p for p in transformer.parameters()]
        if c.fp8_base:
            # Frozen base weights stored in fp8; LoRA layers added afterwards stay unhooked.
            enable_fp8_storage(transformer, self.accelerator.device)
        active = []
        if frozen_style:
            # The motion stage trains against the published style file, also right after training that
            # style in this process: a run resumed in the motion stage can only load the file, and the
            # two must train the same motion.
            if "style" in (getattr(transformer, "peft_config", None) or {}):
                transformer.delete_adapters("style")
            info = self.library.get(frozen_style, kind="style")
            with slots.quiet_peft():
                model.pipe.load_lora_weights(str(self.library.verified_path(info)), adapter_name="style")
            active.append("style")
        config = LoraConfig(r=c.rank, lora_alpha=c.alpha, target_modules=slots.SLOTS[stage].pattern,
                            init_lora_weights=True, lora_dropout=0.0)
        # peft draws the initial A from the global RNG: seed it from the stage alone, so the draw does not
        # depend on what ran before in this process (the style stage, or nothing after a resume).
        set_seed(_stage_seed(c.seed, stage))
        with slots.quiet_peft():
            transformer.add_adapter(config, adapter_name=stage)
        active.append(stage)
        transformer.set_adapter(active)
        # peft's set_adapter marks every active adapter trainable; only this stage's LoRA may learn.
        for name, param in transformer.named_parameters():
            param.requires_grad_("lora_" in name and f".{stage}." in name)
        slots.lora_to_compute_dtype(transformer)
        # Trainable weights in fp32 whatever the base's dtype: bf16 updates of 3e-5 vanish in rounding.
        cast_training_params(transformer, dtype=torch.float32)
        return [p for p in transformer.parameters() if p.requires_grad]

    def stage_dir(self, stage: str) -> Path:
        return self.config.run_dir() / stage if self.config.stage == "both" else self.config.run_dir()

    def train_stage(self, model: LoadedModel, cache: LatentCache, stage: str, name: str, samples: list[Sample],
                    val_samples: list[Sample], dataset: Dataset, frozen_style: str | None) -> StageResult:
        from diffusers.optimization import get_scheduler

        c, accelerator = self.config, self.accelerator
        run_dir = self.stage_dir(stage)
        ckpt_root = run_dir / "checkpoints"
        if c.resume and (record := checkpoints.finished(run_dir)) is not None:
            # Published before the interruption: nothing of this stage runs or is written again.
            done = StageResult(**record)
            self.emit({"type": "stage_done", "stage": stage, "adapter": done.output, "steps_done": done.steps_done,
                       "best_step": done.best_step, "stopped": done.stopped, "already_finished": True})
            return done
        transformer = model.pipe.transformer
        transformer_class = type(transformer)  # FSDP2 swaps the class of the module it shards
        params = self.prepare_trainable(model, stage, frozen_style)
        if c.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        optimizer = torch.optim.AdamW(params, lr=c.learning_rate, betas=tuple(c.adam_betas),
                                      weight_decay=c.weight_decay)
        # accelerate steps a prepared scheduler once per process; scale as the diffusers scripts do.
        lr_scheduler = get_scheduler(c.lr_scheduler, optimizer,
                                     num_warmup_steps=int(c.warmup_ratio * c.steps) * accelerator.num_processes,
                                     num_training_steps=c.steps * accelerator.num_processes)
        batches = BucketBatches(samples, c.batch_size, _stage_seed(c.seed, stage))
        loader = torch.utils.data.DataLoader(CachedSamples(cache, samples), batch_sampler=batches, num_workers=0)
        self._register_hooks(stage)
        prepared, optimizer, loader, lr_scheduler = accelerator.prepare(transformer, optimizer, loader, lr_scheduler)
        params = [p for p in prepared.parameters() if p.requires_grad]  # FSDP shards replace the parameters
        state = {"stage": stage, "step": 0, "micro_step": 0, "best": None, "evals_since_best": 0, "history": [],
                 "frozen_style": frozen_style, "stopped": None}
        resumed_from = 0
        best_file = run_dir / "best" / "adapter.safetensors"
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
        self.emit({"type": "stage_start", "stage": stage, "name": name, "steps": c.steps, "samples": len(samples),
                   "validation_samples": len(val_samples), "validation_seeds": c.val_seeds,
                   "trainable_parameters": sum(p.numel() for p in params), "resumed_from": resumed_from})
        sampler_t = TimestepSampler(c.shift, c.timestep_sampling)
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
                        _step_seed(c.seed, stage, accelerator.process_index, state["micro_step"]))
                    with accelerator.autocast():
                        loss = flow_matching_loss(prepared, batch, sampler_t, generator)
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
                self.emit({"type": "step", "stage": stage, "step": state["step"], "loss": mean_loss,
                           "lr": lr, "grad_norm": float(grad_norm or 0.0),
                           "step_time": time.perf_counter() - started, "memory_mb": _memory_mb()})
                if accelerator.is_main_process:
                    progress.report(self.on_event, f"train {stage}", state["step"], c.steps, loss=mean_loss, lr=lr)
                started, losses = time.perf_counter(), []
                failpoint("train_step")
                stopped = self._after_step(model, cache, stage, state, val_samples, ckpt_root, run_dir)
                if stopped != "finished" or state.get("stopped") is not None:
                    break
        transformer.eval()
        accelerator.wait_for_everyone()
        if stopped == "interrupted":
            return StageResult(stage, name, state["step"], _best_step(state), _best_scores(state), stopped)
        failpoint("stage_end")  # the stage's last checkpoint is written, nothing is published yet
        replicas = self._replica_checksums(params)
        output = self._finish(model, prepared, transformer_class, stage, name, state, run_dir, dataset)
        result = StageResult(stage, output, state["step"], _best_step(state), _best_scores(state), stopped)
        failpoint("stage_published")
        if accelerator.is_main_process:
            checkpoints.mark_finished(run_dir, dataclasses.asdict(result))
        accelerator.wait_for_everyone()
        accelerator.free_memory()
        self.emit({"type": "stage_done", "stage": stage, "adapter": output, "steps_done": state["step"],
                   "best_step": _best_step(state), "stopped": stopped, "replica_checksums": replicas})
        return result

    def _replica_checksums(self, params: list[torch.nn.Parameter]) -> list[str]:
        """A hash of each process's trainable weights: data-parallel replicas must agree bit for bit.

        Under FSDP each process holds its own shard, so the hashes differ by design.
        """
        digest = hashlib.sha256()
        for param in params:
            local = param.to_local() if hasattr(param, "to_local") else param
            digest.update(local.detach().float().cpu().numpy().tobytes())
        mine = torch.tensor([int.from_bytes(digest.digest()[:7], "big")], device=self.accelerator.device)
        return [f"{int(v):014x}" for v in self.accelerator.gather(mine).tolist()]

    def _after_step(self, model: LoadedModel, cache: LatentCache, stage: str, state: dict[str, Any],
                    val_samples: list[Sample], ckpt_root: Path, run_dir: Path) -> str:
        c, accelerator = self.config, self.accelerator
        outcome = "finished"
        if val_samples and (state["step"] % c.val_every == 0 or state["step"] == c.steps):
            if self._validate(model, cache, stage, state, val_samples, run_dir) and c.early_stopping:
                outcome = "early_stop"
                self.emit({"type": "early_stop", "stage": stage, "step": state["step"],
                           "best_step": _best_step(state), "patience": c.patience, "min_delta": c.min_delta})
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
                                    files={checkpoints.BEST_FILE: run_dir / "best" / "adapter.safetensors"})
            self.emit({"type": "checkpoint", "stage": stage, "step": state["step"], "path": str(path)})
        if outcome == "interrupted":
            self.emit({"type": "stopped", "stage": stage, "step": state["step"], "checkpoint": str(path)})
        return outcome

    # -- validation and early stopping ---------------------------------------------------------------------

    def _validate(self, model: LoadedModel, cache: LatentCache, stage: str, state: dict[str, Any],
                  samples: list[Sample], run_dir: Path) -> bool:
        """Score samples from the held-out items; keep the best weights. Returns True when patience ran out."""
        c, accelerator = self.config, self.accelerator
        improved = False
        if accelerator.is_main_process:
            scores, video = held_out.validate(
                model, cache, samples, self.config, self.accelerator,
                _ensure(run_dir / "validation") / f"step_{state['step']:07d}.mp4")
            best = state["best"]
            improved = best is None or held_out.score(scores, c) < held_out.score(best, c) - c.min_delta
            summary = {k: v for k, v in scores.items() if k != "scores"}
            if improved:
                state["best"] = {"step": state["step"], **summary}
                state["evals_since_best"] = 0
                self._save_trainable(model, stage, run_dir / "best")
            else:
                state["evals_since_best"] += 1
            state["history"].append({"step": state["step"], **summary})
            self.emit({"type": "validation", "stage": stage, "step": state["step"], **scores, "video": str(video),
                       "best": improved, "best_step": state["best"]["step"]})
        flags = torch.tensor([float(state["evals_since_best"] >= c.patience)], device=accelerator.device)
        return bool(accelerator.reduce(flags, reduction="sum").item() > 0)

    # -- saving --------------------------------------------------------------------------------------------

    def _trainable_state(self, model: LoadedModel, stage: str) -> dict[str, torch.Tensor]:
        from peft import get_peft_model_state_dict

        transformer = self.accelerator.unwrap_model(model.pipe.transformer)
        state = get_peft_model_state_dict(transformer, adapter_name=stage)
        return {k: v.detach().float().cpu().clone() for k, v in state.items()}

    def _save_trainable(self, model: LoadedModel, stage: str, folder: Path) -> None:
        from safetensors.torch import save_file

        if self.config.method == "full":
            return  # keeping a best copy of all 14B weights costs more than it gives; the last weights are saved
        folder.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(folder / "adapter.safetensors") as tmp:
            save_file(self._trainable_state(model, stage), str(tmp))

    def _restore_best(self, model: LoadedModel, stage: str, run_dir: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        best = run_dir / "best" / "adapter.safetensors"
        if self.config.method == "lora" and self.config.keep_best and best.is_file():
            transformer = self.accelerator.unwrap_model(model.pipe.transformer)
            set_peft_model_state_dict(transformer, load_file(str(best)), adapter_name=stage)

    def _finish(self, model: LoadedModel, prepared: Any, transformer_class: type, stage: str, name: str,
                state: dict[str, Any], run_dir: Path, dataset: Dataset) -> str:
        """Put the best weights back and publish them: into the library, or as a transformer folder."""
        c, accelerator = self.config, self.accelerator
        self._restore_best(model, stage, run_dir)
        accelerator.wait_for_everyone()
        extra = {"hyperparameters": {k: v for k, v in c.to_dict().items() if k not in ("extra",)},
                 "best_step": _best_step(state), "validation": _best_scores(state), "steps_done": state["step"],
                 "validation_history": state["history"], "frozen_style": state.get("frozen_style"),
                 # Which weights were published: the best validated ones, or the last (the study's matched arms).
                 "weights": "best" if c.method == "lora" and c.keep_best and state.get("best") else "last"}
        if c.method == "full":
            # Every process takes part in gathering the weights (under FSDP each holds a shard); rank 0 writes.
            weights = accelerator.get_state_dict(prepared)
            folder = Path(c.models_dir) / name
            if accelerator.is_main_process:
                tmp = folder.with_name(f".{name}.tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                save_transformer(transformer_class, model.pipe.transformer.config, weights, tmp)
                atomic.write_json(tmp / "cinescene.json",
                                  {"base_model": c.model, "trained_on": dataset.summary(), **extra})
                atomic.replace_dir(tmp, folder)
            accelerator.wait_for_everyone()
            return str(folder)
        if not accelerator.is_main_process:
            return name
        transformer = accelerator.unwrap_model(model.pipe.transformer)
        canonical = lora_formats.from_peft(self._trainable_state(model, stage), c.rank, c.alpha)
        if c.resume and self._published_already(name, stage, canonical):
            return name  # killed after publishing, before marking the stage finished
        info = self.library.add(canonical, stage, name=name, base_model=c.model, transformer=transformer,
                                overwrite=True, alpha=c.alpha, trained_on=dataset.summary(), extra=extra,
                                description=c.description or f"trained by cinescene on {Path(c.data).name}")
        return info.name

    def _published_already(self, name: str, stage: str, canonical: dict[str, torch.Tensor]) -> bool:
        from safetensors.torch import load_file

        info = self.library.find(name)
        if info is None or info.kind != stage:
            return False
        stored = load_file(str(info.path))
        return stored.keys() == canonical.keys() and all(torch.equal(stored[k], canonical[k]) for k in stored)

    def _register_hooks(self, stage: str) -> None:
        self._stage = stage  # read by the hooks at call time, so one registration serves every stage
        if self.config.method == "lora" and not getattr(self, "_hooked", False):
            checkpoints.keep_only_lora(self.accelerator, lambda: self._stage)
            self._hooked = True


def save_transformer(cls: type, config: Any, weights: dict[str, torch.Tensor], folder: Path) -> None:
    """Write a full state dict (gathered from every process) as a diffusers transformer folder.

    The weights go into an empty shell of the model by reference (``assign``), so rank 0 holds them once,
    and diffusers' own ``save_pretrained`` shards and indexes them as ``from_pretrained`` expects.
    """
    from accelerate import init_empty_weights

    with init_empty_weights():
        shell = cls.from_config(config)
    shell.load_state_dict(weights, strict=True, assign=True)
    shell.save_pretrained(folder)


def _stage_seed(seed: int, stage: str) -> int:
    """A seed for one stage's draws (LoRA init, batch order), independent of any other stage."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stage}".encode()).digest()[:4], "big")  # numpy takes 32 bits


def _step_seed(seed: int, stage: str, process: int, micro_step: int) -> int:
    """The noise and timestep seed of one micro-step: a function of where the run is, never of its history."""
    return (_stage_seed(seed, stage) * 1_000_003 + process * 7919 + micro_step) % 2**63


def _best_step(state: dict[str, Any]) -> int | None:
    return state["best"]["step"] if state.get("best") else None


def _best_scores(state: dict[str, Any]) -> dict[str, float] | None:
    return {k: v for k, v in state["best"].items() if k != "step"} if state.get("best") else None


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
