"""Where a whole photo's bits go between the training estimate and the real file, for clc and
its base (an experiment for issue 7): per level, summed over the val photos and their 1,024 px
tiles as the codec cuts them,

- estimate: -log2 of the model's likelihoods (eval mode, what validation crops report), plus
            clc's reference ids at 10 bits each;
- tables:   the ideal cost of the real symbols under the frozen tables the coder uses (z per
            channel; y under the nearest-above scale of the float64 reference path);
- payload:  the range coder's tile payloads;
- file:     the .lcf files (container, header and the CRCs included),

as bits per pixel (the mean over photos, as the report and the bench take it), and each model's
PSNR (the same from the forward pass and from the file).

    python scripts/clc_coding_overhead.py -q 1 2 3
"""
import argparse
import math
from pathlib import Path

import numpy as np
import torch

import lcodec
from lcodec import api
from lcodec.bench.metrics import psnr
from lcodec.codec.tiling import tile_grid
from lcodec.io.images import read_image


def table_bits(tables, table_ids, symbols):
    """Ideal bits of `symbols` under tables[table_ids] (escapes: the escape entry's cost)."""
    total = 0.0
    for t in np.unique(table_ids):
        p, lo = tables.probabilities(int(t)), int(tables.lo[int(t)])
        s = symbols[table_ids == t] - lo
        inside = (s >= 0) & (s < len(p) - 1)            # the last entry is the escape
        total += -np.log2(p[s[inside]]).sum() - (~inside).sum() * math.log2(p[-1])
    return total


def tile_bits(codec, name, pixels):
    """(estimate, tables, payload) bits of one tile, and its reconstruction from the forward pass."""
    h, w, _ = pixels.shape
    ph, pw = codec._padded(h, w)
    x = torch.from_numpy(np.pad(pixels, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge"))
    x = x.permute(2, 0, 1)[None].float() / 255
    m = codec.model
    with torch.no_grad():
        side = codec.retrieve(pixels) if name == "clc" else None
        out = m(x, codec.refs64[torch.from_numpy(side)].float()[None]) if name == "clc" else m(x)
        y = m.g_a(x)
        z = m.h_a(y)
    estimate = sum(-torch.log2(v).sum().item() for v in out["likelihoods"].values())
    estimate += 0 if side is None else len(side) * math.log2(codec.entries)
    z_sym = np.rint(z[0].double().numpy() - codec.medians[:, None, None]).astype(np.int64)
    ideal = table_bits(codec.z_tables, np.broadcast_to(codec._channel_ids(z_sym.shape), z_sym.shape), z_sym)
    ids, means, _ = codec.entropy_params(z_sym, side)
    ideal += table_bits(codec.gaussian, ids, np.rint(y[0].double().numpy() - means).astype(np.int64))
    payload = 8 * len(codec.encode_tile(pixels))
    rec = torch.round(out["x_hat"][0].clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()[:h, :w]
    return np.array([estimate, ideal, payload]), rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-q", "--quality", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--models", nargs="+", default=["clc", "mbt2018-mean"])
    ap.add_argument("--val", default="../shared/data/images/val")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photos = [read_image(p)[0] for p in sorted(Path(args.val).glob("*.png"))]
    print("| level | model | estimate | tables | payload | file | PSNR dB (forward / file) |")
    print("|---|---|---|---|---|---|---|")
    for q in args.quality:
        for name in args.models:
            codec = api.get_codec(name, q, "cpu")
            codec.model.eval()
            bpp, db_fwd, db_file = [], [], []
            for x in photos:
                rec, bits = np.zeros_like(x), np.zeros(3)
                for y0, x0, h, w in tile_grid(x.shape[0], x.shape[1], codec.tile):
                    b, rec[y0:y0 + h, x0:x0 + w] = tile_bits(codec, name, x[y0:y0 + h, x0:x0 + w])
                    bits += b
                blob = lcodec.encode(x, model=name, quality=q, device="cpu")
                bpp.append(np.append(bits, 8 * len(blob)) / (x.shape[0] * x.shape[1]))
                db_fwd.append(psnr(x, rec))
                db_file.append(psnr(x, lcodec.decode(blob, device="cpu")))
            est, ideal, payload, file = np.mean(bpp, axis=0)
            print(f"| q{q} | {name} | {est:.5f} | {ideal:.5f} | {payload:.5f} | {file:.5f} "
                  f"| {np.mean(db_fwd):.3f} / {np.mean(db_file):.3f} |", flush=True)


if __name__ == "__main__":
    main()
