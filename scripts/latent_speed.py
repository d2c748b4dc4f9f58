"""Issue 8's reading benchmark: how much faster a model gets its inputs from .lcf files as
latents (`lcodec.open(f).latents()`: header, entropy decoding, dequantization; no synthesis)
than as decoded pixels (`lcodec.decode(f)`), on whole photos (every tile of each file).

    python scripts/latent_speed.py ../shared/data/images/val [-m walloc-rgb] [-q 1 -q 2] [--threads 2]

Each photo is encoded once (in memory), then every file is read both ways after a warm-up
file; rates are megapixels of photo per second of wall time, from bytes already in memory
(disk excluded, which favours neither way)."""
import argparse
import time


def measure(folder, model, quality):
    import lcodec
    from lcodec.train.data import image_files
    files = image_files(folder)
    blobs = [lcodec.encode(str(p), model=model, quality=quality, device="cpu") for p in files]
    pixels = sum(h["width"] * h["height"] for h in (lcodec.open(b).header for b in blobs))
    lcodec.open(blobs[0]).latents(device="cpu")      # warm-up: model load, first-call costs
    lcodec.decode(blobs[0], device="cpu")
    t = time.perf_counter()
    for b in blobs:
        lcodec.open(b).latents(device="cpu")      # the whole photo (every tile), as decode reads it
    latent_s = time.perf_counter() - t
    t = time.perf_counter()
    for b in blobs:
        lcodec.decode(b, device="cpu")
    decode_s = time.perf_counter() - t
    return len(blobs), pixels / 1e6, latent_s, decode_s, sum(map(len, blobs)) * 8 / pixels


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("-m", "--model", default="walloc-rgb")
    ap.add_argument("-q", "--quality", type=int, action="append")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    print(f"{a.folder}, {a.model}, {a.threads} torch threads, cpu")
    for q in a.quality or [1, 2, 3]:
        n, mp, lat, dec, bpp = measure(a.folder, a.model, q)
        print(f"q{q}: {n} photos, {mp:.1f} MP, {bpp:.3f} bits per pixel over all: latents {mp / lat:.1f} MP/s, "
              f"decoded pixels {mp / dec:.1f} MP/s: latents read {dec / lat:.1f}x faster")


if __name__ == "__main__":
    main()
