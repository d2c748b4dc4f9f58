"""Does a neighbour-conditioned prior pay for VQGAN's indices? (the study behind its tables)

    python scripts/vqgan_contexts.py lcodec/models/weights/vqgan-q3-v4.pt

Index maps of the training photos (and their mirror images) fit the tables; the bits per
index are the cross-entropy on the validation photos' maps. Unconditional frequencies against
tables chosen by (cluster of the index above, cluster of the index to the left), contexts cut
at 256 px tile borders as the codec cuts them, for several cluster counts and smoothing
strengths (pseudo-counts toward the unconditional frequencies)."""
import argparse

import numpy as np
import torch

from lcodec.models import vqgan
from lcodec.models.state import load_state
from lcodec.train import data


def contexts(a, cl, n, tile=16):
    up = np.full(a.shape, n)
    up[1:] = cl[a[:-1]]
    up[::tile] = n
    left = np.full(a.shape, n)
    left[:, 1:] = cl[a[:, :-1]]
    left[:, ::tile] = n
    return up * (n + 1) + left


def bits(fit, ev, k, cl=None, n=0, alpha=0.0):
    base = np.full(k, 0.5)
    for a in fit:
        base += np.bincount(a.ravel(), minlength=k)
    pb = base / base.sum()
    if cl is None:
        return sum(-np.log2(pb[a.ravel()]).sum() for a in ev) / sum(a.size for a in ev)
    counts = np.zeros(((n + 1) ** 2, k))
    for a in fit:
        np.add.at(counts, (contexts(a, cl, n).ravel(), a.ravel()), 1)
    p = (counts + alpha * pb) / (counts.sum(1, keepdims=True) + alpha)
    return sum(-np.log2(p[contexts(a, cl, n).ravel(), a.ravel()]).sum() for a in ev) / sum(a.size for a in ev)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--train", default="../shared/data/images/train")
    ap.add_argument("--val", default="../shared/data/images/val")
    a = ap.parse_args()
    state = load_state(a.weights)
    k = state["quantizer.codebook"].shape[0]
    model = vqgan.VQGAN(K=k)
    model.load_state_dict(state)
    model.eval()
    maps = lambda folder, flips: [vqgan.image_indices(model, t.permute(1, 2, 0).numpy())  # noqa: E731
                                  for img in data.load_images(folder) for t in ((img, img.flip(-1)) if flips else (img,))]
    fit, ev = maps(a.train, True), maps(a.val, False)
    print(f"K={k}: uniform {np.log2(k):.3f} bits/index, unconditional {bits(fit, ev, k):.3f}")
    codes = model.quantizer.codes().detach()
    use = torch.from_numpy(sum(np.bincount(m.ravel(), minlength=k) for m in fit) + 0.5)
    for n in (8, 16, 32):
        cl = (codes @ vqgan.spherical_kmeans(codes, use, n).t()).argmax(1).numpy()
        row = [f"{bits(fit, ev, k, cl, n, f * k):.3f} (alpha {f} K)" for f in (0.0625, 0.25, 1.0)]
        print(f"{n} clusters: " + ", ".join(row), flush=True)


if __name__ == "__main__":
    main()
