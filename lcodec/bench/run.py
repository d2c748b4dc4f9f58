"""`lcodec bench`: every codec x quality x file, in one process, into results.json/.csv,
summary.md (averages, speed, BD-rates) and rd.png."""
import csv
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from . import anchors, metrics

FIELDS = ["file", "codec", "kind", "quality", "width", "height", "bytes", "header_bytes", "bpp",
          "psnr", "ms_ssim", "encode_s", "decode_s"]


def model_kind(name):
    """'peer' for a standard learned codec we benchmark against (e.g. the CompressAI
    hyperprior), 'learned' for our own codecs."""
    from ..models.registry import model_spec
    return "peer" if model_spec(name).get("benchmark") else "learned"


def learned_targets(models, modality="image"):
    """(model, quality) pairs of installed models of a modality, optionally restricted to `models`."""
    from ..models.registry import list_models
    out = []
    for m in list_models():
        if m["modality"] != modality or (models and m["name"] not in models):
            continue
        out += [(m["name"], q) for q in m["qualities"] if m["levels"][str(q)]["installed"]]
    if models:
        known = {m for m, _ in out}
        missing = [m for m in models if m not in known]
        if missing:
            from ..errors import ModelError
            raise ModelError(f"no installed {modality} model named {', '.join(missing)}")
    return out


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


SHEET_FILES = 4


def run(folder, out_dir, models=(), anchor_names=None, device="auto", limit=None):
    import torch
    from tqdm import tqdm
    from .. import api
    from ..io.images import read_image
    from ..train.data import image_files

    files = image_files(folder)[:limit]
    targets = learned_targets(models)
    anchor_names = anchors.available() if anchor_names is None else anchor_names
    jobs = [(model_kind(m), m, q) for m, q in targets]
    jobs += [("anchor", a, q) for a in anchor_names for q in anchors.QUALITIES[a]]
    dev = str(api._device(device))
    rows, warmed = [], set()
    sheet = []      # VQGAN beside the anchors at their lowest settings (first SHEET_FILES files)
    bar = tqdm(total=len(files) * len(jobs), unit="enc", desc="bench", dynamic_ncols=True)
    for path in files:
        pixels, _ = read_image(path)
        h, w, _ = pixels.shape
        shown = [("original", pixels)]
        for kind, codec, q in jobs:
            if (codec, q) not in warmed:  # warm-up (model load, first-call costs): not timed
                _encode(kind, codec, q, pixels, dev)
                warmed.add((codec, q))
            blob, enc_s = _timed(_encode, kind, codec, q, pixels, dev)
            rec, dec_s = _timed(_decode, kind, blob, dev)
            header = api.open(blob).container.header_bytes if kind != "anchor" else 0
            row = {"file": path.name, "codec": codec, "kind": kind, "quality": q, "width": w, "height": h,
                   "bytes": len(blob), "header_bytes": header, "bpp": len(blob) * 8 / (w * h),
                   "psnr": metrics.psnr(pixels, rec), "ms_ssim": metrics.ms_ssim(pixels, rec),
                   "encode_s": enc_s, "decode_s": dec_s}
            rows.append(row)
            if codec == "vqgan" or (kind == "anchor" and q == anchors.QUALITIES[codec][0] and codec != "webp"):
                shown.append((f"{codec} {'q' if kind != 'anchor' else 'quality '}{q}: {row['bpp']:.3f} bpp, "
                              f"MS-SSIM {row['ms_ssim']:.3f}", rec))
            if kind == "learned" and codec.startswith("walloc"):
                rows.append(_mosaic_row(row, blob, dev))
            bar.update()
        if len(sheet) < SHEET_FILES and any(label.startswith("vqgan") for label, _ in shown):
            sheet.append((path.name, shown))
    bar.close()
    if sheet:
        from .sheet import comparison_sheet
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        comparison_sheet(sheet, Path(out_dir) / "vqgan_sheet.png")
    env = {"device": dev, "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "files": len(files), "folder": str(folder), "date": time.strftime("%Y-%m-%d %H:%M")}
    write_report(Path(out_dir), rows, env)
    return rows


def _mosaic_row(row, blob, dev):
    """The same latents stored the WaLLoC paper's way: lossless WebP mosaics, no header."""
    from .. import api
    f = api.open(blob)
    codec = f.codec(dev)
    total = 0
    from ..codec.tiling import tile_grid
    for i, (_, _, th, tw) in enumerate(tile_grid(f.header["height"], f.header["width"], codec.tile)):
        total += anchors.webp_mosaic_bytes(codec.decode_symbols(f.container.tiles[i], th, tw))
    return dict(row, codec=f"{row['codec']}+webp-mosaic", kind="baseline", bytes=total, header_bytes=0,
                bpp=total * 8 / (row["width"] * row["height"]), encode_s=float("nan"), decode_s=float("nan"))


def _encode(kind, codec, q, pixels, dev):
    if kind != "anchor":
        from .. import api
        return api.encode(pixels, model=codec, quality=q, device=dev)
    return anchors.encode(codec, pixels, q)


def _decode(kind, blob, dev):
    if kind != "anchor":
        from .. import api
        return api.decode(blob, device=dev)
    return anchors.decode(blob)


# ---- report -------------------------------------------------------------------------------
def curves(rows):
    """codec -> list of (quality, mean bpp, mean psnr, mean ms_ssim, enc MP/s, dec MP/s), by rate."""
    out = {}
    for codec in dict.fromkeys(r["codec"] for r in rows):
        pts = []
        for q in sorted({r["quality"] for r in rows if r["codec"] == codec}):
            sel = [r for r in rows if r["codec"] == codec and r["quality"] == q]
            mp = sum(r["width"] * r["height"] for r in sel) / 1e6
            enc = sum(r["encode_s"] for r in sel)
            dec = sum(r["decode_s"] for r in sel)
            pts.append({"quality": q, "bpp": float(np.mean([r["bpp"] for r in sel])),
                        "psnr": float(np.mean([r["psnr"] for r in sel])),
                        "ms_ssim": float(np.nanmean([r["ms_ssim"] for r in sel])) if any(
                            not math.isnan(r["ms_ssim"]) for r in sel) else float("nan"),
                        "header_bytes": float(np.mean([r["header_bytes"] for r in sel])),
                        "encode_mps": mp / enc if enc == enc and enc > 0 else float("nan"),
                        "decode_mps": mp / dec if dec == dec and dec > 0 else float("nan")})
        out[codec] = sorted(pts, key=lambda p: p["bpp"])
    return out


def monotone(pts, metric, rate):
    """The points, by rate, whose quality beats every lower-rate point (BD integration needs a
    curve that rises with rate; a codec's noisy low end can dip)."""
    out = []
    for p in sorted(pts, key=lambda p: p[rate]):
        if math.isfinite(p[metric]) and (not out or p[metric] > out[-1][metric]):
            out.append(p)
    return out


def bd_rate(anchor_pts, test_pts, metric="psnr", rate="bpp"):
    """BD-rate (%) of test against anchor, PCHIP (bjontegaard) over the rising part of each
    curve; NaN without >= 2 points each or without overlap."""
    import warnings
    import bjontegaard as bd
    anchor_pts, test_pts = monotone(anchor_pts, metric, rate), monotone(test_pts, metric, rate)
    if len(test_pts) < 2 or len(anchor_pts) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(bd.bd_rate([p[rate] for p in anchor_pts], [p[metric] for p in anchor_pts],
                                    [p[rate] for p in test_pts], [p[metric] for p in test_pts],
                                    method="pchip", require_matching_points=False))
        except (ValueError, ZeroDivisionError):
            return float("nan")


def _at(pts, bpp, metric="psnr", rate="bpp"):
    """The anchor's metric at rate `bpp` by PCHIP interpolation of its curve (pts sorted by
    rate); NaN outside its range."""
    from scipy.interpolate import PchipInterpolator
    xs = np.array([p[rate] for p in pts])
    ys = np.array([p[metric] for p in pts])
    keep = np.concatenate([[True], np.diff(xs) > 0])
    xs, ys = xs[keep], ys[keep]
    if len(xs) < 2 or not xs[0] <= bpp <= xs[-1]:
        return float("nan")
    return float(PchipInterpolator(xs, ys)(bpp))


def _fmt(v, nd=3):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def write_rows(out, rows, env, fields):
    """results.json (environment + rows) and results.csv (one row per file x codec x quality)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    with open(out / "results.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields)
        wr.writeheader()
        wr.writerows(rows)


def _pct(v):
    return _fmt(v) if v is None or math.isnan(v) else f"{v:.1f} %"


def _db(v):
    return _fmt(v) if v is None or math.isnan(v) else f"{v:.2f} dB"


BD_NA = ("\nn/a: no BD-rate, because the two curves share no range of quality (BD-rate integrates over "
         "the overlap), or one has fewer than two rising points.")


def bd_table(cv, models, references, metric="psnr", rate="bpp"):
    """Markdown rows: the BD-rate of every model (row) against every reference (column)."""
    lines = ["| model | " + " | ".join(references) + " |", "|---" * (len(references) + 1) + "|"]
    for m in models:
        lines.append(f"| {m} | " + " | ".join("-" if a == m else _pct(bd_rate(cv[a], cv[m], metric, rate))
                                              for a in references) + " |")
    return lines


def write_report(out, rows, env):
    write_rows(out, rows, env, FIELDS)
    cv = curves(rows)
    lines = [f"# lcodec bench: {env['folder']} ({env['files']} files)\n",
             f"Device {env['device']} ({env['cpu']}), torch threads {env['torch_threads']}, {env['date']}.",
             "PSNR and MS-SSIM are computed per image on the 8-bit reconstruction, then averaged over",
             "images; bpp comes from the real file size (for .lcf files: header included; the mean",
             "header size is listed separately). Speeds: megapixels per second over all files, warm-up",
             "excluded, from a pixel array to bytes (encode) and back (decode), entropy coding included.",
             "`+webp-mosaic` rows store the same latents as the learned codec the WaLLoC paper's way",
             "(lossless WebP mosaic, maximum effort, no header): same quality, different rate.\n",
             "| codec | q | bpp | PSNR dB | MS-SSIM | header B | enc MP/s | dec MP/s |",
             "|---|---|---|---|---|---|---|---|"]
    for codec, pts in cv.items():
        for p in pts:
            lines.append(f"| {codec} | {p['quality']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {_fmt(p['ms_ssim'], 4)} "
                         f"| {p['header_bytes']:.0f} | {_fmt(p['encode_mps'], 2)} | {_fmt(p['decode_mps'], 2)} |")
    peers = sorted({r["codec"] for r in rows if r["kind"] == "peer"})
    learned = sorted({r["codec"] for r in rows if r["kind"] == "learned"}) + peers
    anchor_codecs = sorted({r["codec"] for r in rows if r["kind"] == "anchor"}) + peers
    if learned and anchor_codecs:
        lines += ["\n## BD-rate (PSNR, PCHIP; negative = fewer bits than the anchor at equal quality)\n",
                  "Columns are the classical anchors and the learned peers (" + (", ".join(peers) or "none") +
                  ", trained here with the same command as our models; the last table gives every model's training).\n"]
        lines += bd_table(cv, learned, anchor_codecs)
        lines.append(BD_NA)
        lines += ["\n## Each learned point against the anchors at the same bpp\n",
                  "PSNR of the learned codec minus the anchor's PSNR interpolated (PCHIP) at the same mean bpp;",
                  "n/a where the bpp lies outside the anchor's measured range.\n",
                  "| model | q | bpp | " + " | ".join(f"vs {a}" for a in anchor_codecs) + " |",
                  "|---" * (len(anchor_codecs) + 3) + "|"]
        for m in learned:
            for p in cv[m]:
                diffs = [None if a == m else p["psnr"] - _at(cv[a], p["bpp"]) for a in anchor_codecs]
                lines.append(f"| {m} | {p['quality']} | {p['bpp']:.4f} | " +
                             " | ".join("-" if d is None else _db(d) for d in diffs) + " |")
    mosaic = [c for c in cv if c.endswith("+webp-mosaic")]
    if mosaic:
        lines += ["\n## Entropy coding vs the paper's WebP mosaics (same latents)\n",
                  "| model | q | .lcf bpp (with header) | WebP mosaic bpp | saving |", "|---|---|---|---|---|"]
        for c in mosaic:
            base = c[: -len("+webp-mosaic")]
            for p, m in zip(cv[base], cv[c]):
                lines.append(f"| {base} | {p['quality']} | {p['bpp']:.4f} | {m['bpp']:.4f} | "
                             f"{100 * (1 - p['bpp'] / m['bpp']):.1f} % |")
    lines += training_table(cv, [c for c in learned if c in cv])
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    plot(cv, {r["codec"]: r["kind"] for r in rows}, out / "rd.png", env)


def training_table(cv, models):
    """Markdown: how much training each measured weight file had (from the ledger), so a
    comparison of codecs can be read against their budgets."""
    from ..errors import LcodecError
    from ..models import registry
    from ..train.ledger import parent, records, steps_from_scratch
    rows = records()
    lines = ["\n## Training of each measured model (lcodec/models/weights/ledger.jsonl, TRAINING.md)\n",
             "Steps from scratch: the steps of the run that made the weights plus those of every shipped",
             "file it started from.\n",
             "| model | q | version | steps from scratch | crop/batch | minutes of that run |", "|---|---|---|---|---|---|"]
    for m in models:
        for p in cv[m]:
            try:
                wfile = registry.weights_entry(m, p["quality"])["weights_file"]
            except LcodecError:   # e.g. a model without installed weights: no record to show
                continue
            r = next((r for r in rows if r["weights_file"] == wfile), None)
            if r:
                start = parent(r, rows)
                steps = steps_from_scratch(r, rows) or (f"{r['steps']} + those of {start['model']} q{start['quality']} "
                                                        f"v{start['version']}" if start else r["steps"])
                lines.append(f"| {m} | {p['quality']} | {r['version']} | {steps} "
                             f"| {r['crop']}/{r['batch']} | {r['wall_minutes']} |")
    return lines


STYLE = {"learned": "-o", "peer": "-^", "anchor": "-s", "baseline": "--"}


def plot(cv, kinds, path, env):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for codec, pts in cv.items():
        style = STYLE[kinds[codec]]
        for ax, metric in zip(axes, ("psnr", "ms_ssim")):
            xs = [p["bpp"] for p in pts if not math.isnan(p[metric])]
            ys = [p[metric] for p in pts if not math.isnan(p[metric])]
            if xs:
                ax.plot(xs, ys, style, label=codec, markersize=4)
    for ax, name in zip(axes, ("PSNR (dB)", "MS-SSIM")):
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.set_xscale("log")     # VQGAN's < 0.05 bpp and WaLLoC's ~2 bpp on one axis
        ax.set_xlim(0.01, 4.0)
        ax.legend(fontsize=8)
    fig.suptitle(f"lcodec bench: {env['folder']} ({env['files']} images, mean per image)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
