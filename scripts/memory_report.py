"""Peak memory (resident set) of `lcodec encode` and `lcodec decode` on large images, each a
fresh process as a user runs it: PNG in, .lcf, PNG out. The image tiles a real photo (the
bundled example) to the requested size. Writes docs/memory.md.

    python scripts/memory_report.py --size 16384 -m walloc-rgb
    python scripts/memory_report.py --size 4096 --size 8192 -m mgm -m vqgan -m mbt2018-mean
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def photo_of(size, path):
    tile = np.asarray(Image.open(ROOT / "examples" / "seeding.png").convert("RGB"))
    reps = (size // tile.shape[0] + 1, size // tile.shape[1] + 1, 1)
    Image.MAX_IMAGE_PIXELS = None   # our own image, written here
    Image.fromarray(np.ascontiguousarray(np.tile(tile, reps)[:size, :size])).save(path, compress_level=1)


def measured(args):
    """(seconds, peak resident MiB) of one lcodec command in a fresh process; exits on failure."""
    t = time.time()
    p = subprocess.Popen([sys.executable, "-m", "lcodec.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode().strip()
    if p.returncode:
        raise SystemExit(f"{' '.join(map(str, args))}: exit {p.returncode}: {err}")
    return time.time() - t, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, action="append", required=True)
    ap.add_argument("-m", "--model", action="append", required=True)
    ap.add_argument("-q", "--quality", type=int, default=2)
    ap.add_argument("-o", "--out", default=str(ROOT / "docs" / "memory.md"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.size:
            src = Path(tmp) / f"photo{size}.png"
            photo_of(size, src)
            for m in a.model:
                lcf, png = Path(tmp) / "x.lcf", Path(tmp) / "x.png"
                enc_s, enc_mib = measured(["encode", src, "-o", lcf, "-m", m, "-q", a.quality, "--device", "cpu",
                                           "--force"])
                dec_s, dec_mib = measured(["decode", lcf, "-o", png, "--device", "cpu", "--force"])
                same = Image.open(png).size == (size, size)
                rows.append(f"| {m} | {a.quality} | {size} x {size} | {enc_mib / 1024:.2f} | {dec_mib / 1024:.2f} "
                            f"| {enc_s:.0f} / {dec_s:.0f} | {lcf.stat().st_size * 8 / size ** 2:.4f} | {same} |")
                print(rows[-1], flush=True)
    out = Path(a.out)
    lines = out.read_text().splitlines() if out.exists() else [
        "# Peak memory of encoding and decoding large images\n",
        "Each row: `lcodec encode BIG.png -o x.lcf` then `lcodec decode x.lcf -o x.png`, each a fresh process on the",
        "CPU; peak resident memory from the kernel (wait4). The image tiles the bundled example photo to size.",
        "Rows are appended by each run of `python scripts/memory_report.py --size N -m MODEL` (its command line",
        "is above its rows).\n"]
    lines += ["", f"`python scripts/memory_report.py {' '.join(sys.argv[1:])}` ({time.strftime('%Y-%m-%d')}, "
                  f"{os.cpu_count()} CPUs):\n",
              "| model | q | image | encode peak GiB | decode peak GiB | seconds enc / dec | bpp | decoded size right |",
              "|---|---|---|---|---|---|---|---|", *rows]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
