"""Meta-training step time in float32 and in bfloat16 autocast, on the same tasks.

`python benchmarks/meta_step.py [--corpus DIR] [--tasks 4] [--inner-steps 5] [--repeats 3]
[--threads 2] [--split validation]`

Draws `--tasks` tasks (10 support + 6 query phrases, augmented as in training) from the
corpus's meta-validation speakers (timing only: nothing is trained), then times the outer
step's forward and backward passes (`dictation.lab.meta_train.task_losses` for every task and
the backward of the outer loss; no optimiser step) in each precision, alternating, and
prints the median seconds per step, the bfloat16 / float32 ratio, and the cosine between
the two precisions' outer gradients (initial values and inner rates), i.e. whether the
cheaper step still points where the float32 step does.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch

from dictation.adapt.inner_loop import cpu_has_native_bf16
from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.loader import backbone_dir
from dictation.app.decoding import load_tokenizer_and_rules
from dictation.lab.corpus.common import default_corpus_dir
from dictation.lab.corpus.readers import read_manifest
from dictation.lab.meta_tasks import TaskSampler, speakers_by_split
from dictation.lab.meta_train import TrainConfig, task_losses


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    x, y = torch.cat([t.flatten() for t in a]), torch.cat([t.flatten() for t in b])
    return float(x @ y / (x.norm() * y.norm() + 1e-30))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=None)
    p.add_argument("--split", default="validation")
    p.add_argument("--tasks", type=int, default=4, help="tasks per outer step")
    p.add_argument("--inner-steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = TrainConfig(inner_steps=args.inner_steps, tasks_per_step=args.tasks)
    speakers = speakers_by_split(read_manifest(args.corpus or default_corpus_dir()), cfg.support + cfg.query)
    if not speakers[args.split]:
        raise SystemExit(f"no {args.split} speakers with {cfg.support + cfg.query} usable phrases in the corpus")
    sampler = TaskSampler(speakers[args.split], cfg, random.Random(0))
    tasks = [sampler.sample() for _ in range(args.tasks)]

    bundle = load_bundle()
    model = bundle.model.eval()
    learner = Learner.from_bundle(bundle, trainable=True)  # as meta-training holds them
    params, lrs = learner.init, learner.inner_lrs
    tok, _ = load_tokenizer_and_rules(backbone_dir())
    precisions = ["float32", "bfloat16"]
    print(
        f"{args.tasks} tasks x (10 support + 6 query), {args.inner_steps} inner steps, {args.threads} threads; "
        f"native bfloat16: {cpu_has_native_bf16()}"
    )

    times: dict[str, list[float]] = {x: [] for x in precisions}
    grads: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    losses: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for precision in precisions:
            for v in list(params.values()) + list(lrs.values()):
                v.grad = None
            t0 = time.perf_counter()
            step_losses = []
            for _, support, query in tasks:
                lq, lb = task_losses(model, tok, params, lrs, support, query, cfg, precision, "cpu")
                ((lq + cfg.base_weight * lb) / len(tasks)).backward()
                step_losses.append(round(float(lq.detach()), 4))
            times[precision].append(time.perf_counter() - t0)
            grads[precision] = ([v.grad.clone() for v in params.values()], [v.grad.clone() for v in lrs.values()])
            losses[precision] = step_losses
    med = {x: statistics.median(t) for x, t in times.items()}
    for x in precisions:
        print(
            f"{x:9s} {med[x]:6.1f} s per outer step (runs: {', '.join(f'{t:.1f}' for t in times[x])}); "
            f"adapted query losses {losses[x]}"
        )
    print(f"bfloat16 / float32: {med['bfloat16'] / med['float32']:.2f}x")
    print(
        f"outer-gradient cosine, bfloat16 vs float32: initial values "
        f"{cosine(grads['float32'][0], grads['bfloat16'][0]):.4f}, inner rates "
        f"{cosine(grads['float32'][1], grads['bfloat16'][1]):.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
