"""What CLC's conditioning draws on (an experiment for issue 7): one clc model's validation crops
(512 px, centred, as in training; bpp estimated from the likelihoods) with its references
swapped for others.

    python scripts/clc_reference_ablation.py -q 1                  # the installed clc q1
    python scripts/clc_reference_ablation.py -q 1 --weights FILE   # any clc state (.pt)

- dictionary: the R nearest dictionary entries (what the codec does);
- dictionary, whole photo: the R entries nearest the whole photo instead of the crop (how much
  retrieval over a larger region than the coded one loses; the codec retrieves per 1024 px tile);
- same photo: the R nearest 256 px grid crops of the crop's own photo outside the crop
  (what `lcodec train clc --same-photo-refs` trains with; the codec never has these);
- same photo, shuffled: those latents with their positions scrambled (same statistics, no
  layout to align);
- zero: all-zero reference latents;
- dictionary, moments path off: the dictionary's references with the moments path (each
  reference's per-channel mean and spread, for models that have one) zeroed;
- conditioning off: the conditioner's two outputs (entropy-parameter shift and synthesis
  input) zeroed, which is the base codec with this model's weights."""
import argparse
import tempfile

import torch

from lcodec.models import clc, registry
from lcodec.models.state import load_matching
from lcodec.train import data
from lcodec.train.hyperprior_train import PhotoGrid, References, val_crop, val_metrics


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-q", "--quality", type=int, required=True)
    ap.add_argument("--weights", default=None, help="a clc state dict [default: the installed one]")
    ap.add_argument("--data", default="../shared/data/images/train")
    ap.add_argument("--val", default="../shared/data/images/val")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = args.weights or registry.verified_path(registry.weights_entry("clc", args.quality), "weights_file")
    model = clc.build("clc", args.quality)
    loaded = load_matching(model, torch.load(path, map_location="cpu", weights_only=True))
    assert len(loaded) == len(model.state_dict()), f"{path}: not a clc q{args.quality} state"
    model.eval()
    r = registry.model_arch("clc", args.quality)["R"]
    with tempfile.TemporaryDirectory() as tmp:
        refs = References("clc", args.quality, lambda: data.load_images(args.data), tmp)
    refs.refresh(model)

    val_images = data.load_images(args.val)
    crops = []
    for img, v in zip(val_images, data.center_crops(val_images, 512)):
        v = val_crop(v)
        _, h, w = img.shape
        grid = PhotoGrid(img, clc)
        grid.latents = clc.reference_latents(model, grid.crops).float()
        box = ((h - v.shape[-2]) // 2, (w - v.shape[-1]) // 2, v.shape[-2], v.shape[-1])
        crops.append((v, grid.references(v[0], box, r)[None], img[None].float() / 255))

    def shuffled(latents):
        flat = latents.flatten(3)
        order = torch.randperm(flat.shape[-1], generator=torch.Generator().manual_seed(0))
        return flat[..., order].reshape(latents.shape)

    modes = {
        "dictionary": lambda v, own, whole: refs.for_batch(v),
        "dictionary, whole photo": lambda v, own, whole: refs.for_batch(whole),
        "same photo": lambda v, own, whole: own,
        "same photo, shuffled": lambda v, own, whole: shuffled(own),
        "zero": lambda v, own, whole: torch.zeros_like(own),
    }
    rows = []
    with torch.no_grad():
        for mode, pick in modes.items():
            rows.append((mode, [val_metrics(model(v, pick(v, own, whole)), v) for v, own, whole in crops]))
        if model.cond.moments is not None:
            model.cond.moments.weight.zero_()
            model.cond.moments.bias.zero_()
            rows.append(("dictionary, moments path off",
                         [val_metrics(model(v, refs.for_batch(v)), v) for v, _, _ in crops]))
        for layer in (model.cond.to_params, model.to_synthesis):
            layer.weight.zero_()
            layer.bias.zero_()
        rows.append(("conditioning off", [val_metrics(model(v, own), v) for v, own, _ in crops]))
    print(f"clc q{args.quality} ({path}), {len(crops)} val crops of 512 px\n")
    print("| references | PSNR dB | bpp (estimated) |\n|---|---|---|")
    for mode, m in rows:
        print(f"| {mode} | {sum(p for p, _ in m) / len(m):.2f} | {sum(b for _, b in m) / len(m):.4f} |")


if __name__ == "__main__":
    main()
