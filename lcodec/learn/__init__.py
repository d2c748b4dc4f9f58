"""Compressed-domain learning: datasets of latents read straight from .lcf files.

    ds = lcodec.learn.LatentDataset("encoded/", labels="folder")
    x, y = ds[0]          # x: C x h x w float tensor (walloc-rgb: the companded latent), y: int
    lcodec.learn.encode_folder("photos/", "encoded/", model="walloc-rgb", quality=1)

No synthesis network runs: a latent costs a header parse and the entropy decoding of one tile.
"""
from .dataset import LatentDataset, collate, encode_folder

__all__ = ["LatentDataset", "collate", "encode_folder"]
