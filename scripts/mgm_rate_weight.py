"""MGM's rate-weighted index choice, swept: for each weight w, tables fitted on the training
photos for that choice (as the export fits them), then the val photos coded through the real
codec and container (bpp from the .lcf size, PSNR per photo, averaged). Nothing is installed.

    python scripts/mgm_rate_weight.py -q 2 --weights 0,0.25,0.5 [--rounds 2] [--threads 1] [--run RUN_DIR]

--run measures a training run's last checkpoint (rounded to fp16, as the export rounds it)
instead of the installed weights.

--rounds 0 keeps the tables fitted on the nearest codewords (the tables a model had before the
rate-weighted choice); the export uses 2."""
import argparse

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-q", "--quality", type=int, required=True)
    ap.add_argument("--weights", default="0,0.25,0.5")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", default="../shared/data/images/train")
    ap.add_argument("--val", default="../shared/data/images/val")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--run", default=None, help="a training run's folder (its last.pt)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from lcodec import api
    from lcodec.models import mgm
    from lcodec.train.export import evaluate, fp16_model, training_tiles
    codec = api.get_codec("mgm", a.quality, "cpu")   # the installed weights; evaluate codes through it
    if a.run:
        run_model, _ = fp16_model("mgm", a.quality, a.run)
        codec.model.load_state_dict(run_model.state_dict())
    tiles = list(training_tiles("mgm", a.data))
    print(f"mgm q{a.quality} ({a.run or 'installed'}), the photos of {a.val}, tables from {a.data} ({a.rounds} refits)")
    print("| w | bpp | PSNR dB |\n|---|---|---|")
    for w in (float(v) for v in a.weights.split(",")):
        codec.tables = mgm.fit_rate_weighted_tables(tiles, codec.model, w, rounds=a.rounds)
        codec.penalties = mgm.index_penalties(codec.tables, codec.model, w)
        val = evaluate("mgm", a.quality, a.val)
        print(f"| {w:g} | {val['bpp']:.4f} | {val['psnr']:.3f} |", flush=True)

if __name__ == "__main__":
    main()
