"""How much an installed MGM level loses to its own quantization: each val photo's top-left
crop (--crop px, a multiple of 32) decoded by the level's synthesis from

- q:        the shipped path, up2(coarse codewords) + fine residual codewords (what a file holds);
- half:     the same with half of the fine level's remaining error added back (what a second
            residual stage that removed half that error would give, before any retraining);
- exact:    the unquantized 1/16 features f1 (no fine quantization error at all).

PSNR against the crop, per photo and averaged. If `exact` is barely above `q`, more bits at
1/16 cannot lift quality without retraining the transforms: the level is limited by what its
C channels at 1/16 carry, not by its codebooks. Nothing is installed or written.

    python scripts/mgm_ceiling.py ../shared/data/images/val -q 3 [--crop 512] [--threads 2]"""
import argparse
from pathlib import Path

import numpy as np

from lcodec.bench.metrics import psnr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("-q", "--quality", type=int, default=3)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.crop % 32:
        raise SystemExit("--crop must be a multiple of 32")
    import torch
    from PIL import Image

    from lcodec.models import mgm
    from lcodec.models.state import load_installed
    torch.set_num_threads(a.threads)
    _, model, _ = load_installed("mgm", a.quality, mgm.build("mgm", a.quality))
    model.eval()
    rows = []
    for path in sorted(Path(a.folder).glob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"))[:a.crop, :a.crop]
        pixels = pixels[:pixels.shape[0] // 32 * 32, :pixels.shape[1] // 32 * 32]
        x = mgm.tile_tensor(pixels)
        with torch.no_grad():
            f1, f2 = model.features(x)
            q1, q2 = model.code_vectors(*model.quantize(f1, f2))
            p1 = model.up2(q2)
            inputs = {"q": p1 + q1, "half": p1 + q1 + 0.5 * (f1 - p1 - q1), "exact": f1}
            row = {k: psnr(255 * x.numpy(), 255 * model.g_s(model.up1(v)).clamp(0, 1).numpy()) for k, v in inputs.items()}
        rows.append(row)
        print(f"{path.name:24s} " + "  ".join(f"{k} {v:6.2f}" for k, v in row.items()) + " dB")
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    print(f"{'mean':24s} " + "  ".join(f"{k} {v:6.2f}" for k, v in mean.items()) + " dB")


if __name__ == "__main__":
    main()
