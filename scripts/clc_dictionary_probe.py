"""Would a larger or sparser dictionary help a trained CLC? (an experiment for issue 7) One clc
model, no retraining: its validation crops (centred; 512 px as in training, or up to
--val-crop; bpp estimated from the likelihoods) with references retrieved from dictionaries of
other sizes, built the shipped way (k-means over random 256 px crops of the training photos,
seed 0), each also with only every `stride`-th latent position of each reference kept (what a
compact dictionary would ship: the conditioning reads the references' statistics, not their
layout).

    python scripts/clc_dictionary_probe.py -q 3 --entries 32 1024 --crops 2000 6000 --strides 1 4
    python scripts/clc_dictionary_probe.py -q 3 --entries 32 1024 --crops 2000 6000 --strides 4 \
        --val-crop 1024
"""
import argparse
import time

import torch

from lcodec.models import clc, registry
from lcodec.models.state import load_matching
from lcodec.train import data
from lcodec.train.hyperprior_train import References, val_crop, val_metrics


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-q", "--quality", type=int, required=True)
    ap.add_argument("--entries", type=int, nargs="+", default=[32, 1024])
    ap.add_argument("--crops", type=int, nargs="+", default=[2000, 6000],
                    help="random crops clustered for each dictionary (one per --entries)")
    ap.add_argument("--strides", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--data", default="../shared/data/images/train")
    ap.add_argument("--val", default="../shared/data/images/val")
    ap.add_argument("--val-crop", type=int, default=512,
                    help="side of the centred val crops (the largest square up to it)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if len(args.crops) != len(args.entries):
        ap.error("give one --crops count per --entries size")
    torch.set_num_threads(args.threads)
    path = registry.verified_path(registry.weights_entry("clc", args.quality), "weights_file")
    model = clc.build("clc", args.quality)
    load_matching(model, torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    train = data.load_images(args.data)
    crops = [val_crop(v) for v in data.center_crops(data.load_images(args.val), args.val_crop)]
    sides = sorted({c.shape[-1] for c in crops})
    print(f"clc q{args.quality} ({path}), {len(crops)} centred val crops of {sides} px\n")
    print("| entries | crops clustered | positions kept | PSNR dB | bpp (estimated) | s |")
    print("|---|---|---|---|---|---|")
    for entries, count in zip(args.entries, args.crops):
        t = time.time()
        d = clc.build_dictionary(train, entries, count=count, seed=0)
        refs = References("clc", args.quality, lambda: train, None, dictionary=d)
        for stride in args.strides:
            refs.stride = stride
            refs.refresh(model)      # the references the crops retrieve are encoded on demand
            with torch.no_grad():
                m = [val_metrics(model(v, refs.for_batch(v)), v) for v in crops]
            side = len(range(0, clc.REF_SIZE // 16, stride))
            print(f"| {entries} | {count} | {side}^2 | {sum(p for p, _ in m) / len(m):.2f} "
                  f"| {sum(b for _, b in m) / len(m):.4f} | {time.time() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
