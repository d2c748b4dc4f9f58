"""Does retrieving references per smaller area help clc on whole photos? (an experiment for
issue 7) The shipped clc and its base, each coding the val photos with other tile sides: every
tile retrieves its own references, so smaller tiles are per-block retrieval, at the cost of the
tile borders (which the base pays too). Real files, real bytes, mean bpp and PSNR per photo.

    python scripts/clc_tile_probe.py -q 1 3 --tiles 1024 512
"""
import argparse
import time
from pathlib import Path

import numpy as np
import torch

import lcodec
from lcodec import api
from lcodec.bench.metrics import psnr
from lcodec.io.images import read_image


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-q", "--quality", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--tiles", type=int, nargs="+", default=[1024, 512], help="tile sides (multiples of 64)")
    ap.add_argument("--models", nargs="+", default=["clc", "mbt2018-mean"])
    ap.add_argument("--val", default="../shared/data/images/val")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photos = [read_image(p)[0] for p in sorted(Path(args.val).glob("*.png"))]
    print("| level | model | tile px | bpp | PSNR dB | s |\n|---|---|---|---|---|---|")
    for q in args.quality:
        for model in args.models:
            codec = api.get_codec(model, q, "cpu")
            for tile in args.tiles:
                codec.tile = tile     # the file's header records it; decode checks it
                t, bpp, db = time.time(), [], []
                for x in photos:
                    blob = lcodec.encode(x, model=model, quality=q, device="cpu")
                    bpp.append(8 * len(blob) / (x.shape[0] * x.shape[1]))
                    db.append(psnr(x, lcodec.decode(blob, device="cpu")))
                print(f"| q{q} | {model} | {tile} | {np.mean(bpp):.4f} | {np.mean(db):.3f} "
                      f"| {time.time() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
