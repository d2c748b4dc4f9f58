"""How much CLC's coded size depends on which references it gets (an experiment for issue 7).

    python scripts/clc_reference_probe.py ../shared/data/images/val -q 2 --refs 1 2 4 8
        codes the folder with R references per tile (the matching takes any R; the model was
        trained with its registry R);
    python scripts/clc_reference_probe.py ../shared/data/images/val -q 2 --choose-by-size 6
        an encoder-only search: per tile, of the pairs among the 6 entries nearest by feature,
        the one that codes smallest, against the nearest pair (the decoder is unchanged).

bpp from the tile payloads (no header); PSNR per image, then averaged. One torch thread."""
import argparse
import itertools

import numpy as np
import torch

from lcodec.api import get_codec
from lcodec.bench.metrics import psnr
from lcodec.codec.tiling import tile_grid
from lcodec.io.images import read_image
from lcodec.models import clc
from lcodec.train.data import image_files


def code_folder(codec, images, choose=None):
    """(bpp, mean PSNR) of the folder; choose(tile) -> ids, else the codec's own retrieval
    (which is also what the codec has again afterwards)."""
    bits = pixels = 0
    psnrs = []
    for img in images:
        h, w, _ = img.shape
        out = np.zeros_like(img)
        for y, x, th, tw in tile_grid(h, w, codec.tile):
            tile = img[y:y + th, x:x + tw]
            if choose is not None:
                ids = choose(tile)
                codec.retrieve = lambda pixels, ids=ids: ids
            blob = codec.encode_tile(tile)
            bits += 8 * len(blob)
            out[y:y + th, x:x + tw] = codec.decode_tile(blob, th, tw)
        psnrs.append(psnr(img, out))
        pixels += h * w
    vars(codec).pop("retrieve", None)
    return bits / pixels, float(np.mean(psnrs))


def smallest_pair(codec, k):
    def choose(tile):
        near = clc.nearest(codec.projected(tile), codec.dictionary["centroids"], k)[0].numpy().astype(np.int64)
        sizes = {}
        for pair in itertools.combinations(near, 2):
            codec.retrieve = lambda pixels, ids=np.array(pair): ids
            sizes[pair] = len(codec.encode_tile(tile))
        return np.array(min(sizes, key=sizes.get))
    return choose


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("-q", "--quality", type=int, default=2)
    ap.add_argument("--refs", type=int, nargs="*", default=[])
    ap.add_argument("--choose-by-size", type=int, default=0, metavar="K")
    a = ap.parse_args()
    torch.set_num_threads(1)
    codec = get_codec("clc", a.quality, "cpu")
    images = [read_image(p)[0] for p in image_files(a.folder)]
    trained_refs = codec.refs
    for r in a.refs:
        codec.refs = r
        print(f"clc q{a.quality}, R={r}: bpp %.4f, PSNR %.3f dB" % code_folder(codec, images), flush=True)
    codec.refs = trained_refs
    if a.choose_by_size:
        print(f"clc q{a.quality}, nearest pair: bpp %.4f, PSNR %.3f dB" % code_folder(codec, images), flush=True)
        print(f"clc q{a.quality}, smallest of the pairs among the {a.choose_by_size} nearest: bpp %.4f, PSNR %.3f dB"
              % code_folder(codec, images, smallest_pair(codec, a.choose_by_size)), flush=True)


if __name__ == "__main__":
    main()
