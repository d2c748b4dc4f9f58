"""Rewrite README.md's image benchmark table from the first table of docs/bench/summary.md
(the output of `lcodec bench ../shared/data/images/val -o docs/bench`): every learned model's
rows, the peers marked "(peer)", and a few anchor settings for scale; figures rounded for
reading. Usage: python scripts/readme_bench_table.py [--summary docs/bench/summary.md]"""
import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| codec | q | bpp | PSNR dB | MS-SSIM | encode MP/s | decode MP/s |"
ANCHOR_SETTINGS = {"jpeg": {"5", "30"}, "webp": {"50"}, "avif": {"5", "45"}}


def summary_rows(path):
    """The cells of each row of the summary's first table (codec, q, bpp, PSNR, MS-SSIM,
    header bytes, encode MP/s, decode MP/s)."""
    rows, started = [], False
    for line in Path(path).read_text().splitlines():
        if line.startswith("| codec |"):
            started = True
        elif started and line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif started and not line.startswith("|"):
            break
    return rows


def speed(text):
    value = float(text)
    return f"{value:.0f}" if value >= 100 else f"{value:.2f}"


def readme_rows(rows):
    from lcodec.models.registry import MODELS
    out = []
    for codec, q, bpp, psnr, msssim, _header, enc, dec in rows:
        if codec in ANCHOR_SETTINGS:
            if q not in ANCHOR_SETTINGS[codec]:
                continue
            name = codec
        elif codec in MODELS:
            name = f"{codec} (peer)" if MODELS[codec].get("benchmark") else codec
        else:   # the same latents stored another way (+webp-mosaic): in summary.md only
            continue
        out.append(f"| {name} | {q} | {float(bpp):.3f} | {float(psnr):.2f} | {float(msssim):.3f} | "
                   f"{speed(enc)} | {speed(dec)} |")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", default=str(ROOT / "docs/bench/summary.md"))
    a = ap.parse_args()
    readme = ROOT / "README.md"
    lines = readme.read_text().splitlines()
    start = lines.index(HEADER) + 2   # after the header and its |---| line
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    new = readme_rows(summary_rows(a.summary))
    lines[start:end] = new
    readme.write_text("\n".join(lines) + "\n")
    print(f"README.md: {end - start} table rows replaced by {len(new)} from {a.summary}")


if __name__ == "__main__":
    main()
