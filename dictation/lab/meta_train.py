"""MAML (first-order Meta-SGD) meta-training of the bundle's adaptation parameters.

A task is one speaker of the corpus: support = `--support` enrollment-like utterances,
query = other utterances of the same speaker. Each task draws one augmentation chain
(speed, pitch, VTLP, room, noise, band-limit, codec, gain), applied identically to all its
utterances, so that a task is a consistent "voice + channel" that adaptation must fix.

Outer loss per task: query loss after `inner_steps` Meta-SGD steps on the support set
(learns the initial values and the per-tensor inner learning rates) plus `base_weight` x
query loss of the unadapted initial values (keeps the model good before any enrollment,
on short unpadded input). Resumable: a checkpoint (atomic) every `--checkpoint-every`
steps; rerunning the same command continues. Multi-GPU: run under torchrun; each rank
takes its own tasks (also after a resume), gradients are averaged, and the ranks stop
together; the log names every rank's tasks.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.inner_loop import autocast_for, batch_loss, inner_loop, make_batches, resolve_precision
from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import load_bundle, save_bundle, write_stock_bundle
from dictation.adapt.model.loader import backbone_dir
from dictation.app.decoding import TextTokenizer, load_tokenizer_and_rules
from dictation.lab.corpus.readers import read_manifest
from dictation.lab.evaluate import initial_values
from dictation.lab.meta_tasks import SOURCE_WEIGHTS, TaskSampler, TaskStream, rank_rng, speakers_by_split, task_label


@dataclass
class TrainConfig:
    steps: int = 600
    tasks_per_step: int = 2
    support: int = 10
    query: int = 6
    inner_steps: int = 3
    outer_lr: float = 1e-3
    lr_lr: float = 3e-3
    base_weight: float = 0.5
    augment_prob: float = 0.7
    checkpoint_every: int = 20
    eval_every: int = 50
    eval_tasks: int = 8  # fixed validation tasks; more draws keep the first 8 (runs stay comparable)
    seed: int = 0
    max_minutes: float = 0.0  # 0 = no wall-clock limit
    lora_layers: tuple[int, ...] = ()  # blocks that carry adaptation parameters; () = the bundle's
    # Inner rate of adaptation tensors the bundle lacks (widened lora_layers); None = the
    # bundle's default. A full default rate on new lower-encoder tensors made one inner
    # loop raise the query loss (0.65 -> 0.85 on the first step of a widened run).
    new_inner_lr: float | None = None
    adapt_stem: bool = False  # widen the adaptation set to the convolutional stem (kept once in a bundle)
    encoder_lora_rank: int = 0  # raise the encoder blocks' LoRA rank (0 = the bundle's)
    second_order: bool = False  # full MAML: back-propagate through the inner gradients
    # Speed copies added to every support set, as the app adds them to the enrollment
    # takes (bundle.json `enroll_speed_copies`, which a run with copies sets to these).
    support_speed_copies: tuple[float, ...] = ()
    # Outer rates ramp up linearly over the run's first steps. A fresh Adam's first updates
    # are ~lr per number whatever the gradient: continuing a trained bundle at the full rate
    # raised its unadapted validation loss for 10-20 steps (model card).
    warmup_steps: int = 0
    workers: int = 0  # processes that load and augment tasks ahead (0 = in the training process)
    # Forward passes of the inner loop and of the query losses under bfloat16 autocast
    # ("bfloat16", or "auto" on a CPU that computes it natively); parameters, rates, losses
    # and Adam stay float32, and validation always runs in float32 so that runs compare.
    precision: str = "float32"
    # Per-source task sampling weights (a speaker's weight; unnamed sources 1.0).
    source_weights: dict[str, float] = field(default_factory=lambda: dict(SOURCE_WEIGHTS))


def outer_rate_scale(step: int, warmup_steps: int) -> float:
    """Factor on the outer learning rates at (1-based) `step`: linear warm-up, then 1."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size); under torchrun, joins the process group (NCCL for CUDA, else gloo)."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def stop_now(local: bool, world: int, dev: torch.device) -> bool:
    """Whether to stop: any rank's time limit stops all of them at the same step.

    Rank 0 also validates and exports, so its clock runs ahead; had it stopped alone the
    other ranks would wait forever in the next step's all-reduce.
    """
    if world <= 1:
        return bool(local)
    import torch.distributed as dist

    flag = torch.tensor([1.0 if local else 0.0], device=dev)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item() > 0)


def task_losses(
    model, tokenizer, params, lrs, support, query, cfg: TrainConfig, precision: str, dev
) -> tuple[torch.Tensor, torch.Tensor]:
    """One task's query losses, after the inner loop on its support set and unadapted:
    differentiable in the initial values and the inner rates (the outer objective's terms).
    `precision`: resolved, "float32" or "bfloat16" (forward passes under autocast)."""
    s = make_batches(model, tokenizer, support, dev)
    q = make_batches(model, tokenizer, query, dev)
    fast, _ = inner_loop(model, params, lrs, s, cfg.inner_steps, second_order=cfg.second_order, precision=precision)
    with autocast_for(precision, dev):
        return batch_loss(model, fast, q), batch_loss(model, params, q)


def evaluate_tasks(
    learner: Learner,
    tasks: list,
    tokenizer: TextTokenizer,
    dev: torch.device,
    inner_steps: int,
    source_of: dict[str, str] | None = None,
) -> dict:
    """Mean query loss before and after adaptation (float32, first order, from the
    learner's initial values at its rates as trained so far) on fixed validation tasks,
    overall and, given `source_of` (speaker -> corpus source), per source:
    `val_by_source` = {source: [base, adapted, tasks]}."""
    model = learner.model
    before, after, sources = [], [], []
    for spk, support, query in tasks:
        sources.append((source_of or {}).get(spk, "?"))
        s = make_batches(model, tokenizer, support, dev)
        q = make_batches(model, tokenizer, query, dev)
        fast, _ = learner.adapt(s, inner_steps)
        with torch.no_grad():
            before.append(float(batch_loss(model, {n: v.detach() for n, v in learner.init.items()}, q)))
            after.append(float(batch_loss(model, fast, q)))
    by_source = {}
    for src in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == src]
        by_source[src] = [
            round(float(np.mean([before[i] for i in idx])), 4),
            round(float(np.mean([after[i] for i in idx])), 4),
            len(idx),
        ]
    return {
        "val_loss_base": float(np.mean(before)),
        "val_loss_adapted": float(np.mean(after)),
        "val_tasks": len(tasks),
        "val_by_source": by_source,
    }


def train(
    corpus: Path,
    run_dir: Path,
    out_bundle: Path,
    cfg: TrainConfig,
    device: str = "auto",
    version: str = "0.2.0",
    rebaseline: bool = False,
    start_from: str = "bundled",
    export_checkpoint: bool = False,
) -> dict:
    """Meta-train (resuming from `run_dir`'s checkpoint); write `out_bundle` at each new best.

    `rebaseline`: score the starting parameters (resumed, or the bundle a fresh run starts
    from) on this run's validation tasks and take that as the best so far, so that a
    bundle is only written when it beats the starting point on the same tasks: for a
    resume on another corpus copy or machine, or a fresh run that continues a bundle.
    `start_from`: what a fresh run starts from: "bundled" (the shipped model), "stock"
    (Whisper tiny.en with zero updates and default inner rates: a rebuild from scratch) or
    a bundle directory. A resumed run takes its values from the checkpoint.
    `export_checkpoint`: write the run's checkpoint as the bundle, scored on the validation
    tasks, and stop (no training): for a run whose objective validation does not measure,
    e.g. one weighted toward some sources, that the held-out evaluation then judges.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    rank, world = _distributed(device)
    dev = torch.device(f"cuda:{rank % max(1, torch.cuda.device_count())}" if device == "cuda" else "cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # NCCL and all_gather_object use the current device
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    used = resolve_precision(cfg.precision, dev)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed * 1000 + rank)
    torch.manual_seed(cfg.seed)

    if start_from == "bundled":
        start_dir = None
    elif start_from == "stock":
        start_dir = write_stock_bundle(run_dir / "stock-bundle")
    else:
        start_dir = Path(start_from)
        if not (start_dir / "bundle.json").is_file():
            raise SystemExit(f"--from {start_from}: no bundle.json there")
    bundle = load_bundle(
        start_dir,
        lora_layers=cfg.lora_layers or None,
        new_inner_lr=cfg.new_inner_lr,
        adapt_stem=cfg.adapt_stem or None,
        encoder_lora_rank=cfg.encoder_lora_rank or None,
    )
    names = bundle.adapt_names
    # Non-meta-learned values (stock LayerNorms, zero LoRA-B): the fine-tuning baseline's start.
    init_values = {n: v.detach().cpu().clone() for n, v in initial_values(bundle).items()}
    model = bundle.model.to(dev)
    # The initial values and inner rates the outer loop trains (the model's own are frozen).
    learner = Learner.from_bundle(bundle, trainable=True)
    params, lrs = learner.init, learner.inner_lrs
    opt = torch.optim.Adam(
        [{"params": list(params.values()), "lr": cfg.outer_lr}, {"params": list(lrs.values()), "lr": cfg.lr_lr}]
    )
    tokenizer, _ = load_tokenizer_and_rules(backbone_dir())

    ckpt_path = run_dir / "checkpoint.pt"
    start, best, history = 0, math.inf, []
    started_from = bundle.info.get("version", "?")
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=dev, weights_only=False)
        with torch.no_grad():
            for n in names:
                params[n].copy_(ckpt["params"][n])
                lrs[n].copy_(ckpt["lrs"][n])
        opt.load_state_dict(ckpt["opt"])
        start, best = ckpt["step"], ckpt["best"]
        started_from = ckpt.get("started_from", started_from)
        init_values = {n: v.cpu() for n, v in ckpt.get("init_values", init_values).items()}
        rng.setstate(ckpt["rng"])
        if rank > 0:
            rng = rank_rng(cfg.seed, rank, start)
        print(f"resumed from step {start}", flush=True)

    utts = read_manifest(corpus)
    by_split = speakers_by_split(utts, cfg.support + cfg.query)
    train_spk, val_spk = by_split["train"], by_split["validation"]
    if not train_spk:
        raise SystemExit(f"no training speakers with >= {cfg.support + cfg.query} usable utterances in {corpus}")
    sampler = TaskSampler(train_spk, cfg, rng)
    val_rng = random.Random(12345)
    # Validation draws with the default source weights whatever --source-weights says, so
    # that runs with other training weights are scored on the same tasks.
    val_cfg = replace(cfg, source_weights=dict(SOURCE_WEIGHTS))
    val_tasks = [TaskSampler(val_spk, val_cfg, val_rng).sample() for _ in range(cfg.eval_tasks)] if val_spk else []
    val_sources = {spk: utts[0].source for spk, utts in val_spk.items()}
    stream = TaskStream(sampler, cfg.workers)
    print(
        f"train speakers {len(train_spk)}, validation speakers {len(val_spk)}; "
        f"{sum(p.numel() for p in params.values())} adaptation parameters on {dev}, {used} passes",
        flush=True,
    )

    log = open(run_dir / "train_log.jsonl", "a")
    t_start = time.time()

    def record(rec: dict) -> None:
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)

    def val_score(rec: dict) -> float:
        """The validation figure a bundle must improve: the outer objective's weighting."""
        return rec["val_loss_adapted"] + cfg.base_weight * rec["val_loss_base"]

    if rebaseline and rank == 0 and val_tasks:
        rec0 = evaluate_tasks(learner, val_tasks, tokenizer, dev, cfg.inner_steps, val_sources)
        best = val_score(rec0)
        record({**rec0, "step": start, "rebaseline": True})

    def save_checkpoint(step: int) -> None:
        tmp = run_dir / "checkpoint.tmp"
        torch.save(
            {
                "params": {n: p.detach().cpu() for n, p in params.items()},
                "lrs": {n: p.detach().cpu() for n, p in lrs.items()},
                "opt": opt.state_dict(),
                "step": step,
                "best": best,
                "rng": rng.getstate(),
                "config": asdict(cfg),
                "init_values": init_values,
                "started_from": started_from,
            },
            tmp,
        )
        os.replace(tmp, ckpt_path)

    def export_bundle(step: int, metrics: dict) -> None:
        learner.restore()  # the trained initial values into the model, which save_bundle writes
        model.to("cpu")
        info = dict(bundle.info)
        info.update(
            {
                "version": version,
                "trained": True,
                "inner_steps": cfg.inner_steps,
                "description": "Whisper tiny.en + meta-learned LoRA/LayerNorm adaptation parameters "
                "and per-tensor inner learning rates (first-order Meta-SGD)",
                "training": {
                    "step": step,
                    "config": asdict(cfg),
                    "corpus": str(corpus),
                    "started_from": started_from,
                    **metrics,
                },
            }
        )
        if cfg.support_speed_copies:  # users' adaptation should run the protocol it was trained for
            info["enroll_speed_copies"] = list(cfg.support_speed_copies)
        save_bundle(model, {n: v.detach().cpu() for n, v in lrs.items()}, out_bundle, info, names)
        # Keep the non-meta-learned initial values: the plain fine-tuning baseline starts there.
        with np.load(out_bundle / "weights.npz") as z:
            arrays = dict(z)
        arrays.update({"init/" + n: v.numpy() for n, v in init_values.items()})
        np.savez_compressed(out_bundle / "weights.tmp.npz", **arrays)
        os.replace(out_bundle / "weights.tmp.npz", out_bundle / "weights.npz")
        model.to(dev)

    if export_checkpoint:
        if world > 1:
            raise SystemExit("--export-checkpoint runs in one process, not under torchrun")
        if not ckpt_path.is_file():
            raise SystemExit(f"--export-checkpoint: no checkpoint in {run_dir}")
        metrics = evaluate_tasks(learner, val_tasks, tokenizer, dev, cfg.inner_steps, val_sources) if val_tasks else {}
        export_bundle(start, {k: v for k, v in metrics.items() if k.startswith("val_")})
        record({**metrics, "step": start, "exported_checkpoint": True})
        return {"step": start, "best": best}

    step = start
    for step in range(start + 1, cfg.steps + 1):
        t0 = time.time()
        opt.zero_grad()
        q_losses, b_losses, labels = [], [], []
        for _ in range(cfg.tasks_per_step):
            task = stream.next()
            _, support, query = task
            labels.append(task_label(task))
            lq, lb = task_losses(model, tokenizer, params, lrs, support, query, cfg, used, dev)
            ((lq + cfg.base_weight * lb) / cfg.tasks_per_step).backward()
            q_losses.append(float(lq.detach()))
            b_losses.append(float(lb.detach()))
        if world > 1:
            import torch.distributed as dist

            for p in list(params.values()) + list(lrs.values()):
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
            by_rank: list = [None] * world
            dist.all_gather_object(by_rank, labels)
            labels = [lab for rank_labels in by_rank for lab in rank_labels]
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        for group, rate in zip(opt.param_groups, (cfg.outer_lr, cfg.lr_lr)):
            group["lr"] = rate * outer_rate_scale(step, cfg.warmup_steps)
        opt.step()
        with torch.no_grad():
            for v in lrs.values():
                v.clamp_(min=0.0)
        rec = {
            "step": step,
            "query_loss_adapted": float(np.mean(q_losses)),
            "query_loss_base": float(np.mean(b_losses)),
            "seconds": round(time.time() - t0, 2),
            "lr_mean": float(np.mean([float(v.detach()) for v in lrs.values()])),
            "tasks": labels,
        }
        if rank == 0 and val_tasks and step % cfg.eval_every == 0:
            rec.update(evaluate_tasks(learner, val_tasks, tokenizer, dev, cfg.inner_steps, val_sources))
            score = val_score(rec)
            if score < best:
                best = score
                rec["best"] = True
                export_bundle(step, {k: v for k, v in rec.items() if k.startswith("val_")})
        if rank == 0:
            record(rec)
            history.append(rec)
            if step % cfg.checkpoint_every == 0:
                save_checkpoint(step)
        if stop_now(bool(cfg.max_minutes) and (time.time() - t_start) / 60 > cfg.max_minutes, world, dev):
            print(f"time limit reached at step {step}", flush=True)
            break
    stream.close()
    if rank == 0:
        save_checkpoint(step)
        if not val_tasks:
            export_bundle(step, {})
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # the others wait while rank 0 writes the checkpoint
        dist.destroy_process_group()
    return {"step": step, "best": best}
