"""The training loop every model shares: wall-clock budget, warm-up + cosine schedule,
resumable checkpoints, periodic validation, a progress bar and a log file; data-parallel
over the ranks of a torchrun job (dist.py), with rank 0 validating, saving and logging."""
import json
import math
import os
import time
from pathlib import Path

import torch

from . import dist


def lr_at(step, total, peak, warmup):
    """Linear warm-up, then cosine decay to 2% of the peak over the planned steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


class Run:
    """State of one training run, kept in run_dir/last.pt (weights_only-loadable)."""

    def __init__(self, run_dir, model, optimizer, resume):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.model, self.optimizer = model, optimizer
        self.step, self.elapsed = 0, 0.0
        self.ckpt = self.dir / "last.pt"
        if resume and self.ckpt.exists():
            state = torch.load(self.ckpt, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
            self.log(f"resumed at step {self.step} after {self.elapsed / 60:.1f} min")
        dist.broadcast_state(model)          # every rank starts from rank 0's weights
        dist.average_gradients_before_each_step(optimizer)

    def save(self):
        if not dist.is_main():
            return
        tmp = self.ckpt.with_suffix(".tmp")
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "step": self.step, "elapsed": self.elapsed, "threads": torch.get_num_threads()}, tmp)
        os.replace(tmp, self.ckpt)

    def log(self, msg, record=None):
        if not dist.is_main():
            return
        line = f"[{time.strftime('%H:%M:%S')}] step {self.step} {msg}"
        print(line, flush=True)
        with open(self.dir / "train.log", "a") as f:
            f.write(line + "\n")
        if record is not None:
            with open(self.dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, "minutes": round(self.elapsed / 60, 2), **record}) + "\n")


def train(run, step_fn, validate, minutes, peak_lr, steps_per_minute_guess, warmup=100,
          val_every=500, save_every=200, schedule=True):
    """Run step_fn(step, lr) until `minutes` of wall time (this invocation) are spent.

    The cosine schedule is planned over the steps the budget is expected to allow, re-estimated
    from the measured step rate, so a short run still anneals. schedule=False: the peak rate
    throughout, no warm-up (to measure what the schedule is worth)."""
    from tqdm import tqdm
    start = time.time()
    budget = minutes * 60.0
    first_step = run.step
    planned = first_step + int(minutes * steps_per_minute_guess)
    bar = tqdm(total=int(budget), unit="s", desc="train", leave=False, dynamic_ncols=True,
               disable=not dist.is_main())
    last_t = start
    main = dist.is_main()
    while True:
        now = time.time()
        done = run.step - first_step
        if done >= 20:  # re-plan from the measured rate
            planned = first_step + int(done * budget / max(now - start, 1e-9))
        stop, planned = dist.agree([float(now - start >= budget), float(planned)])  # rank 0 decides
        planned = int(planned)
        if stop:
            break
        lr = lr_at(run.step, max(planned, run.step + 1), peak_lr, warmup) if schedule else peak_lr
        for g in run.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        stats = step_fn(run.step, lr)
        dist.broadcast_buffers(run.model)
        run.step += 1
        t = time.time()
        run.elapsed += t - last_t
        bar.update(int(t - start) - bar.n)
        last_t = t
        if run.step % 20 == 0:
            bar.set_postfix({k: f"{v:.4g}" for k, v in stats.items()})
        if run.step % save_every == 0:
            run.save()
        if run.step % val_every == 0 and main:
            rec = validate()
            run.log(" ".join(f"{k}={v:.4g}" for k, v in rec.items()), rec)
    bar.close()
    if run.step > first_step or not run.ckpt.exists():   # an export-only call leaves the
        run.save()                                       # checkpoint (and its threads) as trained
    rec = validate() if main else {}
    run.log("final " + " ".join(f"{k}={v:.4g}" for k, v in rec.items()), rec)
    if dist.is_initialized():   # the evidence that data parallelism kept the ranks identical
        (run.dir / f"rank{dist.rank()}.sha256").write_text(dist.weights_sha256(run.model) + "\n")
    return rec
