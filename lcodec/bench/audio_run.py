"""`lcodec bench` on audio: every learned audio model x quality and every anchor x level, on
every file, into results.json/.csv, summary.md (averages, speed, BD-rates, equal-bitrate
comparison per file) and rd.png."""
import math
import platform
import time
from pathlib import Path

import numpy as np

from . import audio_anchors, audio_metrics
from .run import BD_NA, _at, _db, _fmt, _timed, bd_table, training_table, learned_targets, write_rows

FIELDS = ["file", "codec", "kind", "quality", "rate", "channels", "seconds", "bytes", "header_bytes", "kbps",
          "snr", "si_sdr", "mel_dist", "encode_s", "decode_s"]


def run(folder, out_dir, models=(), anchor_names=None, device="auto", limit=None):
    import soundfile as sf
    import torch
    from tqdm import tqdm
    from .. import api
    from ..train.data import audio_files

    files = audio_files(folder)[:limit]
    targets = learned_targets(models, "audio")
    anchor_names = audio_anchors.available() if anchor_names is None else anchor_names
    jobs = [("learned", m, q) for m, q in targets]
    jobs += [("anchor", a, q) for a in anchor_names for q in audio_anchors.QUALITIES[a]]
    dev = str(api._device(device))
    rows, warmed = [], set()
    bar = tqdm(total=len(files) * len(jobs), unit="enc", desc="bench", dynamic_ncols=True)
    for path in files:
        x, rate = sf.read(str(path), dtype="float64", always_2d=True)
        secs = len(x) / rate
        for kind, codec, q in jobs:
            if kind == "anchor" and not audio_anchors.supports(codec, x.shape[1]):
                bar.update()
                continue
            if (codec, q) not in warmed:  # warm-up (model load, first-call costs): not timed
                _encode(kind, codec, q, x, rate, dev)
                warmed.add((codec, q))
            blob, enc_s = _timed(_encode, kind, codec, q, x, rate, dev)
            rec, dec_s = _timed(_decode, kind, codec, blob, rate, x, dev)
            rec = pcm16(rec)
            header = api.open(blob).container.header_bytes if kind == "learned" else 0
            rows.append({"file": path.name, "codec": codec, "kind": kind, "quality": q, "rate": rate,
                         "channels": x.shape[1], "seconds": secs, "bytes": len(blob), "header_bytes": header,
                         "kbps": len(blob) * 8 / secs / 1000, "snr": audio_metrics.snr(x, rec),
                         "si_sdr": audio_metrics.si_sdr(x, rec), "mel_dist": audio_metrics.mel_distance(x, rec, rate),
                         "encode_s": enc_s, "decode_s": dec_s})
            bar.update()
    bar.close()
    env = {"device": dev, "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "files": len(files), "folder": str(folder), "date": time.strftime("%Y-%m-%d %H:%M"),
           "seconds": round(sum(sf.info(str(p)).duration for p in files), 2)}
    write_report(Path(out_dir), rows, env)
    return rows


def pcm16(x):
    """What a 16-bit file of the decoded audio holds (metrics are taken on this)."""
    return np.clip(np.round(x * 32768.0), -32768, 32767) / 32768.0


def _encode(kind, codec, q, x, rate, dev):
    if kind == "learned":
        from .. import api
        return api.encode(x, model=codec, quality=q, device=dev, rate=rate)
    return audio_anchors.encode(codec, x, rate, q)


def _decode(kind, codec, blob, rate, ref, dev):
    if kind == "learned":
        from .. import api
        return api.decode(blob, device=dev).astype(np.float64)
    return audio_anchors.decode(codec, blob, rate, ref)


# ---- report -------------------------------------------------------------------------------
def _finite_mean(values):
    v = [x for x in values if math.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def curves(rows):
    """codec -> points (quality, mean kbps, SNR, SI-SDR, mel distance, x real time), by rate."""
    out = {}
    for codec in dict.fromkeys(r["codec"] for r in rows):
        pts = []
        for q in sorted({r["quality"] for r in rows if r["codec"] == codec}):
            sel = [r for r in rows if r["codec"] == codec and r["quality"] == q]
            secs = sum(r["seconds"] for r in sel)
            pts.append({"quality": q, "kbps": float(np.mean([r["kbps"] for r in sel])),
                        "snr": _finite_mean([r["snr"] for r in sel]),
                        "si_sdr": _finite_mean([r["si_sdr"] for r in sel]),
                        "mel_dist": float(np.mean([r["mel_dist"] for r in sel])),
                        "header_bytes": float(np.mean([r["header_bytes"] for r in sel])),
                        "encode_x": secs / max(sum(r["encode_s"] for r in sel), 1e-9),
                        "decode_x": secs / max(sum(r["decode_s"] for r in sel), 1e-9)})
        out[codec] = sorted(pts, key=lambda p: p["kbps"])
    return out


def matched(rows, model, quality, anchor, metric):
    """Per file: the model's metric minus the anchor's at the model's bitrate on that file (PCHIP
    along the anchor's levels on that file); returns (mean difference, files compared)."""
    diffs = []
    for r in (r for r in rows if r["codec"] == model and r["quality"] == quality):
        pts = sorted(({"kbps": a["kbps"], metric: a[metric]} for a in rows
                      if a["codec"] == anchor and a["file"] == r["file"]), key=lambda p: p["kbps"])
        ref = _at(pts, r["kbps"], metric, "kbps") if pts else float("nan")
        if math.isfinite(ref) and math.isfinite(r[metric]):
            diffs.append(r[metric] - ref)
    return (float(np.mean(diffs)) if diffs else float("nan")), len(diffs)


def write_report(out, rows, env):
    write_rows(out, rows, env, FIELDS)
    cv = curves(rows)
    lines = [f"# lcodec bench (audio): {env['folder']} ({env['files']} files, {env['seconds']} s)\n",
             f"Device {env['device']} ({env['cpu']}), torch threads {env['torch_threads']}, {env['date']}.",
             "Metrics per file on the decoded audio (rounded to 16 bits) at the file's own rate and length, averaged over",
             "files: SNR and SI-SDR in dB (higher is better), log-mel distance in dB (80 bands, lower is",
             "better). kbps from the real file size (.lcf header included). Speed: seconds of audio per",
             "second of wall time over all files (warm-up excluded), array to bytes and back.\n",
             "| codec | q | kbps | SNR dB | SI-SDR dB | mel dist dB | header B | enc x | dec x |",
             "|---|---|---|---|---|---|---|---|---|"]
    for codec, pts in cv.items():
        for p in pts:
            lines.append(f"| {codec} | {p['quality']} | {p['kbps']:.1f} | {p['snr']:.2f} | {p['si_sdr']:.2f} "
                         f"| {p['mel_dist']:.2f} | {p['header_bytes']:.0f} | {p['encode_x']:.0f} | {p['decode_x']:.0f} |")
    learned = sorted({r["codec"] for r in rows if r["kind"] == "learned"})
    anchor_codecs = sorted({r["codec"] for r in rows if r["kind"] == "anchor"})
    if learned and anchor_codecs:
        lines += ["\n## BD-rate (SNR vs kbps, PCHIP, mean curves; negative = fewer bits at equal SNR)\n"]
        lines += bd_table(cv, learned, anchor_codecs, "snr", "kbps") + [BD_NA]
        for metric, name in (("snr", "SNR"), ("mel_dist", "mel distance")):
            lines += [f"\n## {name} at equal bitrate, file by file\n",
                      f"For each file, the model's {name} minus the anchor's {name} interpolated (PCHIP over the",
                      "anchor's levels on that file) at the model's bitrate on that file; mean over the files",
                      "inside the anchor's bitrate range (their count in brackets)."
                      + (" Lower mel distance is better: negative = the model is closer." if metric == "mel_dist"
                         else " Positive = the model is better.") + "\n",
                      "| model | q | kbps | " + " | ".join(f"vs {a}" for a in anchor_codecs) + " |",
                      "|---" * (len(anchor_codecs) + 3) + "|"]
            for m in learned:
                for p in cv[m]:
                    cells = []
                    for a in anchor_codecs:
                        d, n = matched(rows, m, p["quality"], a, metric)
                        cells.append(f"{_db(d)} ({n})")
                    lines.append(f"| {m} | {p['quality']} | {p['kbps']:.1f} | " + " | ".join(cells) + " |")
    lines += training_table(cv, [c for c in learned if c in cv])
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    plot(cv, {r["codec"]: r["kind"] for r in rows}, out / "rd.png", env)


def plot(cv, kinds, path, env):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .run import STYLE
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for codec, pts in cv.items():
        for ax, metric in zip(axes, ("snr", "mel_dist")):
            ax.plot([p["kbps"] for p in pts], [p[metric] for p in pts], STYLE[kinds[codec]], label=codec,
                    markersize=4)
    for ax, name in zip(axes, ("SNR (dB)", "log-mel distance (dB, lower is better)")):
        ax.set_xlabel("kbps")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.set_xlim(0, 200)
        ax.legend(fontsize=8)
    fig.suptitle(f"lcodec bench: {env['folder']} ({env['files']} files, mean per file)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
