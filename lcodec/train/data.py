"""Training data: real photos held in memory as uint8, served as random flipped crops."""
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def image_files(folder):
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no images found in {folder}")
    return files


def load_images(folder):
    """All images of a folder as 3 x H x W uint8 tensors."""
    from ..io.images import read_image
    return [torch.from_numpy(read_image(p)[0]).permute(2, 0, 1).contiguous() for p in image_files(folder)]


class CropSampler:
    """Random crops with horizontal/vertical flips, as float32 in [-0.5, 0.5]."""

    def __init__(self, images, seed=0):
        self.images = images
        self.rng = np.random.default_rng(seed)

    def batch(self, size, crop):
        out = torch.empty(size, 3, crop, crop)
        for i in range(size):
            img = self.images[self.rng.integers(len(self.images))]
            _, h, w = img.shape
            c = min(crop, h, w)
            y, x = self.rng.integers(h - c + 1), self.rng.integers(w - c + 1)
            t = img[:, y:y + c, x:x + c]
            if self.rng.random() < 0.5:
                t = t.flip(-1)
            if self.rng.random() < 0.5:
                t = t.flip(-2)
            if c < crop:
                t = torch.nn.functional.interpolate(t[None].float(), size=(crop, crop), mode="bilinear")[0]
            out[i] = t.float()
        return out / 255.0 - 0.5


def center_crops(images, size):
    """Deterministic validation crops (the largest centred square up to `size`, multiple of 16)."""
    out = []
    for img in images:
        _, h, w = img.shape
        c = min(size, h, w) // 16 * 16
        y, x = (h - c) // 2, (w - c) // 2
        out.append(img[:, y:y + c, x:x + c].float()[None] / 255.0 - 0.5)
    return out
