"""CLC against its base codec (issue 7), on any folder of photos:

    python scripts/clc_report.py ../shared/data/images/val -o docs/clc [--threads 2]

For clc and mbt2018-mean (the same base codec trained with the same budget, no conditioning)
at every quality: bpp from the real .lcf size, PSNR per image (averaged), the reference-id
share of the bits, encode time (retrieval included, and retrieval alone) and decode time,
and the peak resident memory of a process that encodes and decodes the folder. Then the
BD-PSNR (gain at equal bpp) and BD-rate of clc against mbt2018-mean (bjontegaard, PCHIP).
Writes OUT/results.json and OUT/report.md. (BD-rate against AVIF and the other peers: `lcodec
bench`.)"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("mbt2018-mean", "clc")


def worker(model, quality, folder):
    """One model and quality over the folder, in this process (so its peak RSS is its own)."""
    import numpy as np
    import lcodec
    from lcodec import api
    from lcodec.codec.tiling import tile_grid
    from lcodec.io.images import read_image
    from lcodec.train.data import image_files
    rows = []
    codec = api.get_codec(model, quality, "cpu")
    warm = np.zeros((64, 64, 3), np.uint8)
    lcodec.decode(lcodec.encode(warm, model=model, quality=quality, device="cpu"), device="cpu")  # not timed
    for path in image_files(folder):
        pixels, _ = read_image(path)
        t = time.perf_counter()
        blob = lcodec.encode(pixels, model=model, quality=quality, device="cpu")
        enc_s = time.perf_counter() - t
        t = time.perf_counter()
        out = lcodec.decode(blob, device="cpu")
        dec_s = time.perf_counter() - t
        h, w, _ = pixels.shape
        grid = tile_grid(h, w, codec.tile)
        ret_s, id_bits, far_bpp = 0.0, 0.0, float("nan")
        if hasattr(codec, "retrieve"):
            t = time.perf_counter()
            for y, x, th, tw in grid:
                codec.retrieve(pixels[y:y + th, x:x + tw])
            ret_s = time.perf_counter() - t
            id_bits = len(grid) * codec.refs * math.log2(codec.entries)
            # ablation: the same file coded with the R *farthest* dictionary entries instead
            nearest = codec.retrieve
            codec.retrieve = lambda p: nearest_far(codec, p)
            try:
                far_bpp = len(lcodec.encode(pixels, model=model, quality=quality, device="cpu")) * 8 / (h * w)
            finally:
                del codec.retrieve
            assert codec.retrieve == nearest
        mse = np.mean((out.astype(np.float64) - pixels) ** 2)
        rows.append({"image": path.name, "pixels": h * w, "bytes": len(blob), "bpp": len(blob) * 8 / (h * w),
                     "psnr": 10 * math.log10(255 ** 2 / max(mse, 1e-12)), "id_share": id_bits / (len(blob) * 8),
                     "far_refs_bpp": far_bpp,
                     "encode_s": enc_s, "retrieval_s": ret_s, "decode_s": dec_s})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10
    return {"model": model, "quality": quality, "peak_rss_mib": round(rss, 1), "rows": rows}


def nearest_far(codec, pixels):
    """The R dictionary entries farthest from the tile (the ablation of retrieval)."""
    import numpy as np
    import torch
    d = torch.cdist(codec.projected(pixels), codec.dictionary["centroids"])[0]
    return torch.argsort(d, descending=True, stable=True)[:codec.refs].numpy().astype(np.int64)


def mean(rows, k):
    return sum(r[k] for r in rows) / len(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "QUALITY"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        import torch
        torch.set_num_threads(a.threads)
        print(json.dumps(worker(a.worker[0], int(a.worker[1]), a.folder)))
        return
    from lcodec.models.registry import model_spec
    results = []
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    for m in MODELS:
        for q in sorted(model_spec(m)["qualities"]):
            out = subprocess.run([sys.executable, __file__, a.folder, "-o", a.out, "--threads", str(a.threads),
                                  "--worker", m, str(q)], capture_output=True, text=True, env=env, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"{m} q{q}: {mean(r['rows'], 'bpp'):.4f} bpp, {mean(r['rows'], 'psnr'):.3f} dB", flush=True)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (Path(a.out) / "report.md").write_text(report(results, a) + "\n")
    print(report(results, a))


def report(results, a):
    import bjontegaard as bd
    import platform
    lines = [f"# CLC vs its base codec on `{a.folder}`", "",
             f"`python scripts/clc_report.py {a.folder} -o {a.out} --threads {a.threads}` "
             f"(cpu, {a.threads} torch threads, {platform.processor() or platform.machine()}). "
             "bpp from the .lcf size (header included); PSNR per image, then averaged; encode time "
             "includes retrieval; peak RSS is that of a process encoding and decoding the folder "
             "(torch and the model included). Ablation: the same files coded with the R dictionary "
             "entries farthest from each tile instead of the nearest (same decoder, ids still sent).", "",
             "| model | q | bpp | PSNR dB | bpp with the farthest references | ref-id share of bits | encode s/img | retrieval s/img | decode s/img | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    curves = {}
    for r in results:
        rows = r["rows"]
        curves.setdefault(r["model"], []).append((mean(rows, "bpp"), mean(rows, "psnr")))
        far = mean(rows, "far_refs_bpp")
        lines.append(f"| {r['model']} | {r['quality']} | {mean(rows, 'bpp'):.4f} | {mean(rows, 'psnr'):.3f} | "
                     f"{'-' if far != far else f'{far:.4f}'} | {100 * mean(rows, 'id_share'):.3f} % | {mean(rows, 'encode_s'):.2f} | "
                     f"{mean(rows, 'retrieval_s'):.3f} | {mean(rows, 'decode_s'):.2f} | {r['peak_rss_mib']:.0f} |")
    base, test = sorted(curves["mbt2018-mean"]), sorted(curves["clc"])
    lines.append("")
    try:
        gain = bd.bd_psnr([b for b, _ in base], [p for _, p in base], [b for b, _ in test], [p for _, p in test],
                          method="pchip", require_matching_points=False)
        rate = bd.bd_rate([b for b, _ in base], [p for _, p in base], [b for b, _ in test], [p for _, p in test],
                          method="pchip", require_matching_points=False)
        lines.append(f"BD-PSNR of clc against mbt2018-mean (PSNR gain at equal bpp): **{gain:+.3f} dB**; "
                     f"BD-rate: **{rate:+.2f} %**.")
    except Exception as e:  # curves that do not overlap have no BD figure
        lines.append(f"No BD figure: {e}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
