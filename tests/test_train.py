"""The training loop runs, checkpoints and resumes (a few steps of the real model, tiny data)."""
import json

import numpy as np
import torch
from PIL import Image

from lcodec.train import walloc_train


def test_train_a_few_steps_then_resume(tmp_path, photo):
    for i in range(2):
        Image.fromarray(photo[i * 100:i * 100 + 160, :200]).save(tmp_path / f"img{i}.png")
    run_dir = tmp_path / "run"
    torch.set_num_threads(1)
    rec, state = walloc_train.run("walloc-rgb", 2, tmp_path, tmp_path, minutes=0.05, resume=False,
                                  device="cpu", run_dir=run_dir, batch=2, crop=32, val_every=10**6)
    assert state.step > 0 and (run_dir / "last.pt").exists()
    assert rec["val_psnr"] > 20  # the PCA initialisation alone reconstructs the photo
    first = state.step
    _, state2 = walloc_train.run("walloc-rgb", 2, tmp_path, tmp_path, minutes=0.02, resume=True,
                                 device="cpu", run_dir=run_dir, batch=2, crop=32, val_every=10**6)
    assert state2.step > first
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and np.isfinite(lines[-1]["val_psnr"])
