"""MGM on any folder of photos (issue 5): for every installed quality, bpp from the real .lcf
size against the code length the frozen tables give the indices (plus the header), the
fixed-length bound m*log2(k), codebook usage, PSNR, and decode speed against the hyperprior
peers (which run a hyperprior network and Gaussian tables; MGM only looks codewords up).

    python scripts/mgm_report.py ../shared/data/images/val -o docs/mgm [--threads 2]

Writes OUT/results.json and OUT/report.md."""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

PEERS = ("bmshj2018-hyperprior", "mbt2018-mean")


def code_bits(codec, maps):
    """-log2 of the indices' probabilities under the codec's frozen tables (what an ideal
    entropy coder would spend)."""
    from lcodec.codec.tables import TOTAL
    bits = 0.0
    for ids, (_, idx) in zip(codec.model.table_ids(), codec.model.in_table_order(maps)):
        for j, t in enumerate(ids):
            bits += float(-np.log2(codec.tables.frequencies(t)[idx[j].ravel()] / TOTAL).sum())
    return bits


def timed_decode(blobs):
    """(seconds to decode all the files after one warm-up decode, the decoded images)."""
    import lcodec
    lcodec.decode(blobs[0], device="cpu")
    t = time.perf_counter()
    out = [lcodec.decode(b, device="cpu") for b in blobs]
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("-o", "--out", default="docs/mgm")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import torch

    import lcodec
    from lcodec import api
    from lcodec.bench.metrics import psnr
    from lcodec.codec.tiling import tile_grid
    from lcodec.errors import ModelError
    from lcodec.formats import container
    from lcodec.io.images import read_image
    from lcodec.models import registry
    from lcodec.train.data import image_files
    torch.set_num_threads(a.threads)
    photos = [read_image(p)[0] for p in image_files(a.folder)]
    pixels = sum(p.shape[0] * p.shape[1] for p in photos)
    rows, speeds = [], {}
    for q in sorted(registry.model_spec("mgm")["qualities"]):
        try:
            codec = api.get_codec("mgm", q, "cpu")
        except ModelError:
            continue
        blobs = [lcodec.encode(p, model="mgm", quality=q, device="cpu") for p in photos]
        file_bits = ideal = header = 0.0
        levels = codec.model.levels()
        used = [[set() for _ in range(lv.m)] for lv in levels]
        for photo, blob in zip(photos, blobs):
            c = container.read(blob)
            header += (len(blob) - sum(len(t) for t in c.tiles.values())) * 8   # header + chunk framing
            file_bits += len(blob) * 8
            for i, (y, x, th, tw) in enumerate(tile_grid(*photo.shape[:2], codec.tile)):
                maps = codec.decode_symbols(c.tiles[i], th, tw)
                ideal += code_bits(codec, maps)
                for u, (lv, idx) in zip(used, codec.model.in_table_order(maps)):
                    for j in range(lv.m):
                        u[j].update(np.unique(idx[j]).tolist())
        dec_s, decoded = timed_decode(blobs)
        scores = [psnr(p, d) for p, d in zip(photos, decoded)]
        rows.append({"quality": q, "bpp": file_bits / pixels, "ideal_plus_header_bpp": (ideal + header) / pixels,
                     "excess_pct": 100 * (file_bits / (ideal + header) - 1), "header_bpp": header / pixels,
                     "bound_bpp": sum(lv.m * math.log2(lv.k) / (1024 if lv is codec.model.coarse else 256) for lv in levels),
                     "psnr": float(np.mean(scores)),
                     **{f"{name}_usage": float(np.mean([len(s) / lv.k for s in u]))
                        for name, lv, u in zip(("coarse", "fine", "refine"), levels, used)},
                     "decode_mps": pixels / 1e6 / dec_s})
        print(rows[-1], flush=True)
    for peer in PEERS:
        for q in (1, 2, 3):
            blobs = [lcodec.encode(p, model=peer, quality=q, device="cpu") for p in photos]
            speeds[f"{peer} q{q}"] = pixels / 1e6 / timed_decode(blobs)[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"rows": rows, "peer_decode_mps": speeds}, indent=1))
    lines = [f"# MGM on {a.folder} ({len(photos)} photos, {pixels / 1e6:.2f} MP)\n",
             f"`python scripts/mgm_report.py {a.folder} -o {a.out} --threads {a.threads}` "
             f"({time.strftime('%Y-%m-%d')}, CPU, {a.threads} torch threads). bpp: real .lcf bytes over all pixels. "
             "Ideal: the indices' code length under the frozen tables (-log2 p summed) plus the container "
             "(header and chunk framing); excess: how much the range coder adds to it. Bound: m log2 k per index position, what a fixed-length code "
             "spends; the saving compares the coded indices (the bpp less the container) with it. Usage: the share of each level's codewords used on these photos, averaged over its codebooks. "
             "Decode speed: MP/s over the folder, after one warm-up decode.\n",
             "| q | bpp | ideal + container | excess | container | fixed-length bound | saving vs bound | PSNR dB "
             "| fine usage | coarse usage | refine usage | decode MP/s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        refine = f"{100 * r['refine_usage']:.0f} %" if "refine_usage" in r else "-"
        lines.append(f"| {r['quality']} | {r['bpp']:.4f} | {r['ideal_plus_header_bpp']:.4f} | {r['excess_pct']:.2f} % "
                     f"| {r['header_bpp']:.5f} | {r['bound_bpp']:.3f} | {100 * (1 - (r['bpp'] - r['header_bpp']) / r['bound_bpp']):.0f} % "
                     f"| {r['psnr']:.2f} | {100 * r['fine_usage']:.0f} % | {100 * r['coarse_usage']:.0f} % "
                     f"| {refine} "
                     f"| {r['decode_mps']:.2f} |")
    lines += ["\nDecode speed of the peers on the same photos (MP/s):\n", "| peer | MP/s |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in speeds.items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
