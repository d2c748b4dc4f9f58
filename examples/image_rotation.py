"""Compressed-domain learning on images: predicting how a photo crop was rotated (0, 90, 180 or
270 degrees: a self-supervised task that needs the crop's content, sky above, ground below)
from walloc-rgb latents read straight out of .lcf files, against the same files decoded to
pixels.

    python examples/image_rotation.py [--quality 2] [--epochs 12]

Every 128 x 128 crop of a 128-px grid over ../shared/data/images (train photos for training,
val photos for testing, so no photo is in both) is rotated four ways and each version encoded
once as its own .lcf file (cached under runs/, resumable). Latents are 12 x 16 x 16, pixels
3 x 128 x 128. Both models share one body (two 3x3 convs at 16 x 16, 4 x 4 pooling, a linear head);
the pixel model's strided front end brings 128 px to 16. Throughputs: reading inputs from the
.lcf files (latents: entropy decoding only; pixels: the full decoder), and training samples/s.

Measured (2026-11-29, walloc-rgb q2 v2, `python examples/image_rotation.py --threads 2`, quiet
2-core machine; Adam lr 5e-4: at 2e-3 both models stayed at chance):

    5760 training / 1000 test crops of 128 px (4 rotations each), walloc-rgb q2 (5822 KiB of .lcf)
    reading inputs from .lcf: latents 153 crops/s, decoded pixels 73 crops/s (2.1x)
    latents (12 x 16 x 16): accuracy 0.390, training 1400 samples/s
    pixels  (3 x 128 x 128): accuracy 0.446, training 1100 samples/s (latents train 1.3x faster)

Short of the targets (within 5 points at >= 3x the training speed; >= 10x faster reading):
on 16 x 16 latents the entropy decoder's fixed per-file costs dominate, and this pixel
network's strided front end is already cheap.
"""
import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lcodec
from lcodec import api
from lcodec.io.images import read_image

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "images"
CROP = 128


def crops(part):
    """Every CROP x CROP crop of a CROP grid over the photos of one split, uint8."""
    out = []
    for p in sorted((DATA / part).glob("*.png")):
        px, _ = read_image(p)
        for y in range(0, px.shape[0] - CROP + 1, CROP):
            for x in range(0, px.shape[1] - CROP + 1, CROP):
                out.append(px[y:y + CROP, x:x + CROP])
    return out


def encoded(part, quality, cache):
    """(.lcf paths, rotation labels) of every crop of a split, each rotated four ways."""
    paths, labels = [], []
    for i, c in enumerate(crops(part)):
        for r in range(4):
            out = cache / part / f"{i:05d}-r{r}.lcf"
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                api.write_atomic(out, lcodec.encode(np.ascontiguousarray(np.rot90(c, r)), quality=quality,
                                                    device="cpu"))
            paths.append(out)
            labels.append(r)
    return paths, np.array(labels)


def read_latents(lcfs):
    t = time.perf_counter()
    xs = [lcodec.open(p).latents(device="cpu").numpy() for p in lcfs]
    return np.stack(xs) / 127.0, len(lcfs) / (time.perf_counter() - t)


def read_pixels(lcfs):
    t = time.perf_counter()
    xs = [lcodec.decode(p, device="cpu").transpose(2, 0, 1) for p in lcfs]
    return np.stack(xs).astype(np.float32) / 255.0 - 0.5, len(lcfs) / (time.perf_counter() - t)


class Classifier(nn.Module):
    """front (input -> 64 channels at 16 x 16), two 3x3 convs, 4 x 4 average pooling, linear.
    The head keeps the 4 x 4 layout: where things are (sky above) is what gives a rotation away,
    and global pooling would throw it out."""

    def __init__(self, front):
        super().__init__()
        self.front = front
        self.body = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(4))
        self.head = nn.Linear(64 * 16, 4)

    def forward(self, x):
        return self.head(self.body(self.front(x)).flatten(1))


def latent_net(c):
    return Classifier(nn.Sequential(nn.Conv2d(c, 64, 3, padding=1), nn.ReLU()))


def pixel_net():
    return Classifier(nn.Sequential(nn.Conv2d(3, 32, 4, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 2, stride=2), nn.ReLU()))


def train_eval(net, x, y, xt, yt, epochs, seed=0):
    """Test accuracy, and training samples per second."""
    torch.manual_seed(seed)
    x, y, xt, yt = (torch.from_numpy(a) for a in (x, y, xt, yt))
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    rng = np.random.default_rng(seed)
    seen, t = 0, time.perf_counter()
    for _ in range(epochs):
        for b in np.array_split(rng.permutation(len(y)), max(1, len(y) // 32)):
            loss = nn.functional.cross_entropy(net(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(b)
    spent = time.perf_counter() - t
    with torch.no_grad():
        acc = float(np.mean([(net(xt[b]).argmax(1) == yt[b]).float().mean().item()
                             for b in np.array_split(np.arange(len(yt)), max(1, len(yt) // 256))]))
    return acc, seen / spent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quality", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--cache", default="runs/image-rotation")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cache = Path(a.cache) / f"q{a.quality}"
    train, y = encoded("train", a.quality, cache)
    test, yt = encoded("val", a.quality, cache)
    lat, lat_rate = read_latents(train)
    lat_t, _ = read_latents(test)
    pix, pix_rate = read_pixels(train)
    pix_t, _ = read_pixels(test)
    c = lat.shape[1]
    acc_l, sps_l = train_eval(latent_net(c), lat, y, lat_t, yt, a.epochs)
    acc_p, sps_p = train_eval(pixel_net(), pix, y, pix_t, yt, a.epochs)
    kb = sum(p.stat().st_size for p in train + test) / 1024
    print(f"{len(train)} training / {len(test)} test crops of {CROP} px (4 rotations each), walloc-rgb "
          f"q{a.quality} ({kb:.0f} KiB of .lcf), {a.epochs} epochs, torch threads {torch.get_num_threads()}")
    print(f"reading inputs from .lcf: latents {lat_rate:.0f} crops/s, decoded pixels {pix_rate:.0f} crops/s "
          f"({lat_rate / pix_rate:.1f}x)")
    print(f"latents ({c} x {lat.shape[2]} x {lat.shape[3]}): accuracy {acc_l:.3f}, training {sps_l:.0f} samples/s")
    print(f"pixels  (3 x {CROP} x {CROP}): accuracy {acc_p:.3f}, training {sps_p:.0f} samples/s "
          f"(latents train {sps_l / sps_p:.1f}x faster)")


if __name__ == "__main__":
    main()
