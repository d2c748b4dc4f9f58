"""Can CLC's conditioning gain at all when its references share content with the input?
(an experiment for issue 7; the codec itself can never have these references)

The oracle: each crop's R references are 256 px crops of its *own* photo that do not overlap
it - the R nearest by retrieval feature among a grid of such crops. Validation crops (512 px,
centred, as in training) take theirs from their own val photo, outside the centre crop. The
run starts where the shipped clc q1 v6 and its base mbt2018-mean q1 v6 started and trains as
they did (same loop, crops, batch, lambda, peak rate), so its validation compares with theirs:

    git show 9680ced:lcodec/models/weights/mbt2018-mean-q1-v5.pt > /tmp/mbt-q1-v5.pt
    python scripts/clc_oracle.py --init-from /tmp/mbt-q1-v5.pt --minutes 60 --run-dir runs/clc-oracle

If it gains clearly over the base, the matching and synthesis work and what the dictionary
lacks is content shared with the input; if it does not, the conditioning itself is the limit."""
import argparse
import time

import torch

from lcodec.models import clc
from lcodec.models.registry import quality_spec
from lcodec.models.state import load_matching
from lcodec.train import data
from lcodec.train.hyperprior_train import REFRESH, rd_step, val_metrics
from lcodec.train.loop import Run, train

SIDE = clc.REF_SIZE


def overlaps(a, b):
    (ay, ax, ah, aw), (by, bx, bh, bw) = a, b
    return ay < by + bh and by < ay + ah and ax < bx + bw and bx < ax + aw


class PhotoGrid:
    """One photo's non-overlapping SIDE px crops, their retrieval features and latents."""

    def __init__(self, img):
        _, h, w = img.shape
        self.boxes = [(y, x, SIDE, SIDE) for y in range(0, h - SIDE + 1, SIDE) for x in range(0, w - SIDE + 1, SIDE)]
        self.crops = torch.stack([img[:, y:y + SIDE, x:x + SIDE] for y, x, _, _ in self.boxes])
        self.features = clc.retrieval_features(self.crops.double() / 255)
        self.latents = None

    def references(self, crop, box, r):
        """Latents (R x M x 16 x 16) of the r grid crops nearest `crop` (3 x H x W in [0, 1])
        among those that do not overlap `box`."""
        free = torch.tensor([not overlaps(box, b) for b in self.boxes])
        dist = torch.cdist(clc.retrieval_features(crop[None].cpu()), self.features)[0]
        ids = torch.sort(dist.masked_fill(~free, float("inf")), stable=True).indices[:r]
        return self.latents[ids]


def refresh(model, grids):
    was = model.training
    model.eval()
    for g in grids:
        g.latents = clc.reference_latents(model, g.crops).float()
    model.train(was)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/images/train")
    ap.add_argument("--val", default="../shared/data/images/val")
    ap.add_argument("--init-from", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    quality, r, batch, crop = 1, 2, 8, 128
    lmbda = quality_spec("clc", quality)["lmbda"]
    model = clc.build("clc", quality)
    loaded = load_matching(model, torch.load(args.init_from, map_location="cpu", weights_only=True))
    print(f"init: {len(loaded)} of {len(model.state_dict())} tensors from {args.init_from}")
    images = data.load_images(args.data)
    grids = [PhotoGrid(img) for img in images]
    sampler = data.CropSampler(images, seed=0)
    val_images = data.load_images(args.val)
    val_grids = [PhotoGrid(img) for img in val_images]
    val = []
    for img, v in zip(val_images, data.center_crops(val_images, 512)):
        v = v[..., :v.shape[-2] // 64 * 64, :v.shape[-1] // 64 * 64] + 0.5
        _, h, w = img.shape
        val.append((v, ((h - v.shape[-2]) // 2, (w - v.shape[-1]) // 2, v.shape[-2], v.shape[-1])))

    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam([{"params": main_params, "lr_scale": 1.0}, {"params": aux, "lr_scale": 10.0}], lr=args.lr)
    state = Run(args.run_dir, torch.nn.ModuleDict({"codec": model}), opt, args.resume)
    t0 = time.time()

    def step_fn(step, cur_lr):
        late = time.time() - t0 >= 0.6 * args.minutes * 60
        c, b = (2 * crop, max(1, batch // 4)) if late else (crop, batch)
        x = sampler.batch(b, c) + 0.5
        if grids[0].latents is None or step % REFRESH == 0:
            refresh(model, grids)
        refs = torch.stack([grids[s].references(xi, box + (box[2],), r)
                            for xi, s, box in zip(x, sampler.sources, sampler.boxes)])
        return {**rd_step(model, opt, main_params, model(x, refs), x, lmbda), "lr": cur_lr}

    @torch.no_grad()
    def validate():
        model.eval()
        refresh(model, val_grids)
        psnrs, bpps = [], []
        for (v, box), g in zip(val, val_grids):
            p, b = val_metrics(model(v, g.references(v[0], box, r)[None]), v)
            psnrs.append(p)
            bpps.append(b)
        model.train()
        return {"val_psnr": sum(psnrs) / len(psnrs), "val_bpp_est": sum(bpps) / len(bpps)}

    train(state, step_fn, validate, args.minutes, args.lr, steps_per_minute_guess=40, val_every=500)


if __name__ == "__main__":
    main()
