"""Experiment (not a shipped path): CLC's conditioner shifting the entropy model's scales
additively (as shipped) or multiplicatively (log domain, so a shift cannot push a scale onto
the coder's lower bound), both started from the trained base mbt2018-mean q1 v2; the control
is the base itself trained as long from the same weights:

    python scripts/clc_scale_shift_ab.py add runs/exp/clc-add-q1 25 &
    python scripts/clc_scale_shift_ab.py log runs/exp/clc-log-q1 25 &
    lcodec train mbt2018-mean -q 1 --data ../shared/data/images/train --val ../shared/data/images/val \
        --minutes 25 --threads 1 --init-from lcodec/models/weights/mbt2018-mean-q1-v2.pt --run-dir runs/exp/mbt-q1

Measured 2026-11-29 (the three side by side, 1 thread each, on 2 cores; final val, 4 centre
crops of 512 px, bpp estimated from the likelihoods): additive 28.03 dB at 0.1097 bpp (929
steps), log domain 28.18 dB at 0.1109 (927), base 28.17 dB at 0.1116 (979). Loss
lambda * 255^2 * MSE + bpp: 0.294 / 0.289 / 0.290. From a trained base, conditioning is at
parity with the base, the log-domain shift slightly ahead of the additive one: no sign yet
of the paper's gain.

usage: clc_scale_shift_ab.py add|log RUN_DIR MINUTES"""
import sys

import torch

import lcodec.models.clc as clc


def forward_log(self, base, refs):
    """Conditioner.forward with the scale shift applied as exp(shift) (clamped to e^+-4)."""
    c = self.condition(base, refs)
    ds, dm = self.to_params(c).chunk(2, 1)
    s, mu = base.chunk(2, 1)
    return torch.cat([s * torch.exp(ds.clamp(-4, 4)), mu + dm], 1), c


if sys.argv[1] == "log":
    clc.Conditioner.forward = forward_log
torch.set_num_threads(1)
from lcodec.train import hyperprior_train
hyperprior_train.run("clc", 1, "../shared/data/images/train", "../shared/data/images/val", float(sys.argv[3]), False,
                     "cpu", sys.argv[2], init_from="lcodec/models/weights/mbt2018-mean-q1-v2.pt", val_every=250)
