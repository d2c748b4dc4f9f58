"""A lazy torch Dataset over .lcf files: headers are read on demand, one tile is entropy-decoded
per item, and optional random crops are taken in latent space."""
from pathlib import Path

import numpy as np
import torch

from ..errors import LcodecError


class LatentDataset(torch.utils.data.Dataset):
    """Items are (latent, label). `labels`: "folder" (the parent folder's name, as class index in
    sorted order), a callable path -> label, or None (label -1). `crop`: a latent-space square
    size for images (the pixel footprint is crop * model stride), a number of latent frames for
    audio; random per item when `random_crop`, centred otherwise. Images: without a crop, or
    for a centred one, the whole image's latents (every tile); a random crop entropy-decodes
    one tile only (chosen at random, by area) and is cut inside it, unless that tile is
    smaller than the crop. Audio: the first ~3 s segment of the first channel pair ((2C) x t:
    mid latents, then side) or of a mono file (C x t)."""

    def __init__(self, folder, labels="folder", crop=None, random_crop=True, device="cpu", seed=0):
        self.files = sorted(Path(folder).rglob("*.lcf"))
        if not self.files:
            raise LcodecError(f"no .lcf files in {folder}")
        self.crop, self.random_crop, self.device = crop, random_crop, device
        self.rng = np.random.default_rng(seed)
        if labels == "folder":
            self.classes = sorted({p.parent.name for p in self.files})
            index = {c: i for i, c in enumerate(self.classes)}
            self.labels = [index[p.parent.name] for p in self.files]
        elif callable(labels):
            self.classes = None
            self.labels = [labels(p) for p in self.files]
        else:
            self.classes, self.labels = None, [-1] * len(self.files)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from .. import api
        f = api.open(self.files[i])
        z = None
        if self.crop and self.random_crop and f.header["modality"] == "image":
            z = self._one_tile(f)
        if z is None:
            z = f.latents(device=self.device)
        if self.crop:
            z = self._crop(z, self.files[i])
        return z, self.labels[i]

    def _one_tile(self, f):
        """The latents of one tile chosen at random by area, or None where it is smaller than the crop."""
        from ..codec.tiling import tile_grid
        h = f.header
        areas = np.array([th * tw for _, _, th, tw in tile_grid(h["height"], h["width"], h["tile_size"])], float)
        z = f.latents(device=self.device, tile=int(self.rng.choice(len(areas), p=areas / areas.sum())))
        return z if min(z.shape[1:]) >= self.crop else None

    def _crop(self, z, path):
        c = self.crop
        sizes = z.shape[1:]                      # (h, w) for images, (t,) for audio
        if min(sizes) < c:
            raise LcodecError(f"{path}: latent {'x'.join(map(str, sizes))} smaller than the crop {c}")
        if self.random_crop:
            start = [int(self.rng.integers(n - c + 1)) for n in sizes]
        else:
            start = [(n - c) // 2 for n in sizes]
        return z[(slice(None),) + tuple(slice(a, a + c) for a in start)]


def collate(batch):
    """Stack latents of equal shape (use `crop` for files of different sizes)."""
    zs, ys = zip(*batch)
    shapes = {tuple(z.shape) for z in zs}
    if len(shapes) != 1:
        raise LcodecError(f"latents of different shapes in one batch: {sorted(shapes)}; set crop=")
    return torch.stack(zs), torch.tensor(ys)


def encode_folder(src, dst, model=None, quality=None, device="cpu", jobs=None):
    """Encode a folder tree of images and/or audio into a mirrored tree of .lcf files
    (resumable; without a model, each file's modality picks walloc-rgb or walloc-stereo;
    jobs: as `lcodec encode --jobs`, by default one worker per core)."""
    from ..batch import run
    return run(src, dst, "encode", model=model, quality=quality, device=device, jobs=jobs)
