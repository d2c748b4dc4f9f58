"""VQGAN extreme (issue 6), on any folder of photos:

    python scripts/vqgan_report.py ../shared/data/images/val -o docs/vqgan [--threads 2]

For every quality (K = 64, 256, 1024 codewords): bpp from the real .lcf size (header
included), the index bits against the fixed-length log2(K)/256 bpp of the published code
(uniform coding), PSNR and MS-SSIM per image (averaged). Then lost-index recovery: 0, 10 and
20 % of the indices dropped at random (seeded), filled by the restorer (as the decoder does:
the mean code vector under its distribution; and, for comparison, its most likely codeword),
against filling them with the most frequent codeword (no restorer); and one whole 256 px tile lost in the file
(its CRC broken) decoded with `conceal=True`. MS-SSIM is against the original photo; "drop"
columns give the MS-SSIM lost against the undamaged decode. Writes OUT/results.json and
OUT/report.md."""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

DROPS = (0.0, 0.1, 0.2)


def measure(folder, qualities):
    import torch
    from pytorch_msssim import ms_ssim
    import lcodec
    from lcodec import api
    from lcodec.formats import container
    from lcodec.io.images import read_image
    from lcodec.models import vqgan
    from lcodec.train.data import image_files

    def scores(ref, out):
        a = torch.from_numpy(ref).permute(2, 0, 1)[None].double() / 255
        b = torch.from_numpy(out).permute(2, 0, 1)[None].double() / 255
        mse = torch.mean((a - b) ** 2).item()
        return 10 * math.log10(1 / max(mse, 1e-12)), ms_ssim(a, b, data_range=1.0).item()

    rows = []
    for q in qualities:
        codec = api.get_codec("vqgan", q, "cpu")
        k = codec.k
        common = int(np.argmax(codec.tables.frequencies(0)[:k]))
        for path in image_files(folder):
            pixels, _ = read_image(path)
            h, w, _ = pixels.shape
            t = time.perf_counter()
            blob = lcodec.encode(pixels, model="vqgan", quality=q, device="cpu")
            enc_s = time.perf_counter() - t
            f = api.open(blob)
            idx = codec.index_map(f.container.tiles, h, w)[0]
            t = time.perf_counter()
            clean = f.decode("cpu")
            dec_s = time.perf_counter() - t
            index_bytes = sum(len(p) for p in f.container.tiles.values())
            row = {"file": path.name, "quality": q, "K": k, "width": w, "height": h, "bytes": len(blob),
                   "bpp": len(blob) * 8 / (h * w), "index_bits_per_index": index_bytes * 8 / idx.size,
                   "uniform_bpp": math.log2(k) / 256, "encode_s": enc_s, "decode_s": dec_s}
            row["psnr"], row["ms_ssim"] = scores(pixels, clean)
            ms_clean = row["ms_ssim"]
            rng = np.random.default_rng(0)
            for p in DROPS[1:]:
                lost = rng.random(idx.shape) < p
                mode, mean_vectors = vqgan.restore(codec.model, idx, lost)
                row[f"index_accuracy_drop{int(p * 100)}"] = float((mode[lost] == idx[lost]).mean())
                for how, decoded in (("restorer", vqgan.decode_vectors(codec.model, mean_vectors, h, w)),
                                     ("mode", vqgan.decode_pixels(codec.model, mode, h, w)),
                                     ("common", vqgan.decode_pixels(codec.model, np.where(lost, common, idx), h, w))):
                    _, ms = scores(pixels, decoded)
                    row[f"ms_ssim_drop{int(p * 100)}_{how}"] = ms
                    row[f"ms_ssim_loss{int(p * 100)}_{how}"] = ms_clean - ms
            g = api.open(container.damage_tile(blob, len(f.container.tiles) // 2), tolerate_damage=True)
            out = g.decode("cpu", conceal=True)
            row["tile_lost_filled"], (_, row["ms_ssim_tile_lost"]) = g.concealed, scores(pixels, out)
            rows.append(row)
            print(json.dumps({k_: (round(v, 4) if isinstance(v, float) else v) for k_, v in row.items()}), flush=True)
    return rows


def mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def report(rows, folder, out, threads):
    lines = [f"# VQGAN extreme on {folder} ({len({r['file'] for r in rows})} photos)\n",
             f"Command: `python scripts/vqgan_report.py {folder} -o {out} --threads {threads}` "
             "(CPU). Means per image. bpp from the real .lcf size, header included.\n",
             "| q | K | bpp | index bits / index | uniform log2(K)/256 bpp | index saving | PSNR dB | MS-SSIM | enc s | dec s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for q in sorted({r["quality"] for r in rows}):
        rs = [r for r in rows if r["quality"] == q]
        k = rs[0]["K"]
        bits = mean(rs, "index_bits_per_index")
        lines.append(f"| {q} | {k} | {mean(rs, 'bpp'):.4f} | {bits:.2f} | {math.log2(k) / 256:.4f} | "
                     f"{100 * (1 - bits / math.log2(k)):.1f} % | {mean(rs, 'psnr'):.2f} | {mean(rs, 'ms_ssim'):.4f} | "
                     f"{mean(rs, 'encode_s'):.2f} | {mean(rs, 'decode_s'):.2f} |")
    lines += ["\n## Lost indices\n",
              "Random drops: that share of the index map lost at random (seed 0), filled by the restorer "
              "as the decoder does (each lost position decoded from the mean code vector under the "
              "restorer's distribution), by its most likely codeword (mode), or, for comparison, with the "
              "most frequent codeword. Tile lost: one 256 px tile's CRC broken in the file, decoded with "
              "`lcodec decode --conceal`. MS-SSIM against the original; in brackets, the MS-SSIM lost "
              "against the undamaged decode.\n",
              "| q | 0 % | 10 % restorer | 10 % mode | 10 % common | 20 % restorer | 20 % mode | 20 % common | "
              "restorer accuracy 20 % | tile lost |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for q in sorted({r["quality"] for r in rows}):
        rs = [r for r in rows if r["quality"] == q]
        cell = lambda p, how: f"{mean(rs, f'ms_ssim_drop{p}_{how}'):.4f} ({mean(rs, f'ms_ssim_loss{p}_{how}'):+.4f})"  # noqa: E731
        tile = mean(rs, "ms_ssim_tile_lost")
        lines.append(f"| {q} | {mean(rs, 'ms_ssim'):.4f} | {cell(10, 'restorer')} | {cell(10, 'mode')} | "
                     f"{cell(10, 'common')} | {cell(20, 'restorer')} | {cell(20, 'mode')} | {cell(20, 'common')} | "
                     f"{100 * mean(rs, 'index_accuracy_drop20'):.1f} % | "
                     f"{tile:.4f} ({mean(rs, 'ms_ssim') - tile:+.4f}) |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(rows, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("-o", "--out", default="docs/vqgan")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-q", "--quality", type=int, action="append")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    report(measure(a.folder, a.quality or [1, 2, 3]), a.folder, out, a.threads)
    print((out / "report.md").read_text())


if __name__ == "__main__":
    main()
