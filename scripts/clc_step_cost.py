"""Where a clc training step's time goes, against its base's (an experiment for issue 7): one
re-encoding of the training references' latents (the same-photo grid crops: such runs encode
the dictionary's references only to validate), then the mean time of batch-8 training steps of
clc (retrieval of the same-photo references included) and of mbt2018-mean, untrained, at one
quality.

    python scripts/clc_step_cost.py -q 3 --threads 1

Run it on a quiet machine: other processes distort every figure."""
import argparse
import time

import torch

from lcodec.train import data
from lcodec.train.hyperprior_train import GRID_REFRESH, REFRESH, References, build, rd_step


def mean_step_seconds(model, sampler, steps, references=None):
    """Mean wall time of `steps` training steps (after 2 warm-up steps) on 128 px batch-8 crops."""
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    params = list(model.parameters())
    times = []
    for _ in range(steps + 2):
        x = sampler.batch(8, 128) + 0.5
        t = time.perf_counter()
        out = model(x, references.for_batch(x, sampler.sources, sampler.boxes)) if references else model(x)
        rd_step(model, opt, params, out, x, 0.025)
        times.append(time.perf_counter() - t)
    return sum(times[2:]) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-q", "--quality", type=int, default=3)
    ap.add_argument("--data", default="../shared/data/images/train")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    images = data.load_images(a.data)
    # same-photo steps read only the photos' grids: no dictionary to build
    refs = References("clc", a.quality, lambda: images, None, same_photo=True, dictionary={})
    clc_model = build("clc", a.quality)
    t = time.perf_counter()
    refs.refresh(clc_model, grids=True)
    refresh = time.perf_counter() - t
    clc_step = mean_step_seconds(clc_model, data.CropSampler(images, seed=0), a.steps, refs)
    base_step = mean_step_seconds(build("mbt2018-mean", a.quality), data.CropSampler(images, seed=0), a.steps)
    grid = sum(len(g.boxes) for g in refs.grids)
    print(f"q{a.quality}, {a.threads} thread(s): re-encoding {grid} grid crops: {refresh:.1f} s")
    print(f"training step: clc {clc_step:.3f} s, mbt2018-mean {base_step:.3f} s")
    for every in sorted({REFRESH, GRID_REFRESH}):
        share = refresh / (refresh + every * clc_step)
        print(f"refresh every {every} steps: {100 * share:.0f} % of clc's time, "
              f"clc steps = {100 * base_step / (clc_step + refresh / every):.0f} % of the base's in equal minutes")


if __name__ == "__main__":
    main()
