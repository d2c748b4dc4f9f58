"""Training the hyperprior peers (bmshj2018-hyperprior, mbt2018-mean) and CLC with the same
loop, data, crops and batch as WaLLoC: loss = lmbda * 255^2 * MSE + bpp (CompressAI's
convention), plus the factorized density's quantile (aux) loss, which only moves the medians
that the coder offsets z by.

CLC also builds its reference dictionary from the training photos (once per run, kept in the
run folder; rebuilt when the registry's dictionary size changed), retrieves R references for
every crop (never from the crop's own photo: the hidden photos are never in the dictionary
either) and refreshes the references' latents round(g_a(reference)) every REFRESH steps (each
encoded when a batch first retrieves it after the refresh; no gradient flows through them).

With same_photo_refs, a training crop's references are instead cut from its own photo, outside
the crop (the R nearest by retrieval feature among a grid of 256 px crops): references that
share content with the input, so the conditioning is rewarded for using them; their latents
are refreshed every GRID_REFRESH steps. Validation and the codec keep the dictionary."""
import math
import time

import torch

from ..models import hyperprior
from ..models.registry import model_arch, model_spec, quality_spec
from ..models.state import load_matching
from . import data
from .loop import Run, train

REFRESH = 100          # steps between re-encodings of the dictionary's references
GRID_REFRESH = 500     # the same with same-photo references, ~370 crops (~45 s on one thread:
                       # every 100 steps, it was a quarter of the run's time, all that a clc
                       # step cost beyond its base's; scripts/clc_step_cost.py). Those runs
                       # re-encode the dictionary's references only to validate.


def overlaps(a, b):
    """Whether boxes (y, x, height, width) a and b share a pixel."""
    (ay, ax, ah, aw), (by, bx, bh, bw) = a, b
    return ay < by + bh and by < ay + ah and ax < bx + bw and bx < ax + aw


class PhotoGrid:
    """One photo's non-overlapping reference-sized crops, their retrieval features and latents."""

    def __init__(self, img, clc):
        side = clc.REF_SIZE
        _, h, w = img.shape
        self.clc = clc
        self.boxes = [(y, x, side, side) for y in range(0, h - side + 1, side) for x in range(0, w - side + 1, side)]
        self.crops = torch.stack([img[:, y:y + side, x:x + side] for y, x, _, _ in self.boxes])
        self.features = clc.retrieval_features(self.crops.double() / 255)
        self.latents = None

    def references(self, crop, box, r):
        """Latents (r x M x 16 x 16) of the r grid crops nearest `crop` (3 x H x W in [0, 1]) by
        retrieval feature, among those that do not overlap `box` (y, x, height, width); overlapping
        ones only where the photo has fewer than r others."""
        free = torch.tensor([not overlaps(box, b) for b in self.boxes])
        dist = torch.cdist(self.clc.retrieval_features(crop[None].cpu()), self.features)[0]
        return self.latents[torch.sort(dist.masked_fill(~free, float("inf")), stable=True).indices[:r]]


class References:
    """CLC's dictionary during training: retrieval per crop and the references' latents (and
    with same_photo, each training photo's grid of references)."""

    def __init__(self, name, quality, load_images, run_dir, same_photo=False, dictionary=None):
        """load_images: a function giving the training photos, called only where they are needed
        (a dictionary to build, same-photo grids); dictionary: one to use as it is (experiments:
        run_dir unused), else the run folder's, built where it has none or one of another size."""
        from ..models import clc
        self.clc = clc
        arch = model_arch(name, quality)
        self.d = dictionary if dictionary is not None else self.run_dictionary(arch, load_images, run_dir)
        self.stride = arch["ref_stride"]
        self.r = arch["R"]
        self.latents = None
        self.grids = [PhotoGrid(img, clc) for img in load_images()] if same_photo else None
        self.every = GRID_REFRESH if same_photo else REFRESH
        self.refreshed_at = None

    def run_dictionary(self, arch, load_images, run_dir):
        """The run folder's dictionary.pt, built and saved where it has none or one built with
        other parameters (entries, crops, crop size, seed) than the registry's now."""
        from pathlib import Path
        from . import dist
        path = Path(run_dir) / "dictionary.pt"
        # seed 0 on every rank of a torchrun job: one dictionary, whatever the rank's data seed
        params = {"entries": arch["entries"], "count": arch["dictionary_crops"], "size": self.clc.REF_SIZE,
                  "seed": 0}
        d = torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None
        if d is None or d.get("params") != params:
            d = self.clc.build_dictionary(load_images(), params["entries"], count=params["count"],
                                          size=params["size"], seed=params["seed"])
            d["params"] = params
            if dist.is_main():
                torch.save(d, path.with_suffix(".tmp"))
                path.with_suffix(".tmp").replace(path)
        return d

    def refresh(self, model, grids=False):
        """Re-encode, with the current analysis, the same-photo references (grids: whole) or the
        dictionary's references (the codec's every `stride`-th position). The dictionary's are
        encoded on demand, the first time a batch retrieves them after the refresh: validation
        reads a few of 1,024 (re-encoding all took ~2 minutes on one thread)."""
        if grids:
            was = model.training
            model.eval()
            for g in self.grids:
                g.latents = self.clc.reference_latents(model, g.crops).float()
            model.train(was)
        else:
            self.model, self.latents = model, None
            self.encoded = torch.zeros(len(self.d["crops"]), dtype=torch.bool)

    def latents_of(self, ids):
        """The dictionary references' latents for ids (any shape), encoding those not yet
        encoded since the last refresh."""
        missing = ids.unique()
        missing = missing[~self.encoded[missing]]
        if len(missing):
            was = self.model.training
            self.model.eval()
            new = self.clc.reference_latents(self.model, self.d["crops"][missing], self.stride).float()
            self.model.train(was)
            if self.latents is None:
                self.latents = torch.zeros((len(self.encoded),) + new.shape[1:])
            self.latents[missing], self.encoded[missing] = new, True
        return self.latents[ids]

    def refresh_if_due(self, model, step):
        """Re-encode the training references at the first step and every `self.every` after."""
        if self.refreshed_at is None or step - self.refreshed_at >= self.every:
            self.refresh(model, grids=self.grids is not None)
            self.refreshed_at = step

    def for_batch(self, x, sources=None, boxes=None):
        """B x R x M x h x w reference latents for crops x (B x 3 x H x W in [0, 1]); `sources`
        and `boxes` (y, x, height, width): where the training crops were cut."""
        if self.grids is not None and sources is not None:
            return torch.stack([self.grids[s].references(xi, box, self.r)
                                for xi, s, box in zip(x, sources, boxes)]).to(x.device)
        p = self.clc.project(self.clc.retrieval_features(x.detach().cpu()), self.d)
        exclude = None
        if sources is not None:
            exclude = torch.tensor(sources)[:, None] == self.d["source"][None, :]
        ids = self.clc.nearest(p, self.d["centroids"], self.r, exclude)
        return self.latents_of(ids).to(x.device)


def bits(likelihoods):
    return sum(-torch.log2(v).sum() for v in likelihoods.values())


def rd_step(model, opt, params, out, x, lmbda):
    """One optimiser step on lmbda * 255^2 * MSE + bpp (CompressAI's convention) + the aux loss,
    from the model's output `out` for crops x; the step's PSNR and bpp."""
    mse = torch.mean((out["x_hat"] - x) ** 2)
    bpp = bits(out["likelihoods"]) / x[:, 0].numel()
    loss = lmbda * 255 ** 2 * mse + bpp + model.aux_loss()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return {"psnr": 10 * math.log10(1.0 / max(mse.item(), 1e-12)), "bpp": bpp.item()}


def val_crop(v):
    """A validation crop (from data.center_crops, in [-0.5, 0.5]) trimmed to the codecs' 64 px
    stride and moved to [0, 1], as the models take it."""
    return v[..., :v.shape[-2] // 64 * 64, :v.shape[-1] // 64 * 64] + 0.5


def val_metrics(out, v):
    """(PSNR of the 8-bit reconstruction, estimated bpp) of one validation crop v (1 x 3 x H x W)."""
    x_hat = torch.round(out["x_hat"].clamp(0, 1) * 255) / 255
    return (10 * math.log10(1.0 / max(torch.mean((x_hat - v) ** 2).item(), 1e-12)),
            bits(out["likelihoods"]).item() / v[0, 0].numel())


def build(name, quality):
    """The untrained peer, or CLC (its base plus the conditioning)."""
    if model_spec(name)["family"] == "clc":
        from ..models import clc
        return clc.build(name, quality)
    return hyperprior.build(name, quality)


def run(name, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch=8, crop=None,
        lr=3e-4, seed=0, val_every=500, init_from=None, lmbda=None, same_photo_refs=False):
    torch.manual_seed(seed)
    lmbda = quality_spec(name, quality)["lmbda"] if lmbda is None else lmbda
    crop = crop or 128
    late_crop = crop * 2
    is_clc = model_spec(name)["family"] == "clc"
    model = build(name, quality)
    if init_from:  # a sibling's weights (e.g. the base codec's transforms for CLC): what matches
        loaded = load_matching(model, torch.load(init_from, map_location="cpu", weights_only=True))
        print(f"init: {len(loaded)} of {len(model.state_dict())} tensors from {init_from}")
    images = data.load_images(data_dir)
    sampler = data.CropSampler(images, seed=seed)
    val = data.center_crops(data.load_images(val_dir), 512) if val_dir else []
    model.to(device)

    def forward(x, sources=None, boxes=None):
        if refs is None:
            return model(x)
        return model(x, refs.for_batch(x, sources, boxes))

    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam([{"params": main, "lr_scale": 1.0}, {"params": aux, "lr_scale": 10.0}], lr=lr)
    state = Run(run_dir, torch.nn.ModuleDict({"codec": model}), opt, resume)
    refs = References(name, quality, lambda: images, run_dir, same_photo_refs) if is_clc else None
    t0 = time.time()

    def step_fn(step, cur_lr):
        late = time.time() - t0 >= 0.6 * minutes * 60
        c, b = (late_crop, max(1, batch // 4)) if late else (crop, batch)
        x = sampler.batch(b, c).to(device) + 0.5          # the sampler gives [-0.5, 0.5]
        if refs is not None:
            refs.refresh_if_due(model, step)
        return {**rd_step(model, opt, main, forward(x, sampler.sources, sampler.boxes), x, lmbda), "lr": cur_lr}

    @torch.no_grad()
    def validate():
        if not val:
            return {}
        model.eval()
        if refs is not None:
            refs.refresh(model)
        psnrs, bpps = [], []
        for v in val:
            v = val_crop(v).to(device)
            p, b = val_metrics(forward(v), v)
            psnrs.append(p)
            bpps.append(b)
        model.train()
        return {"val_psnr": sum(psnrs) / len(psnrs), "val_bpp_est": sum(bpps) / len(bpps)}

    return train(state, step_fn, validate, minutes, lr, steps_per_minute_guess=60, val_every=val_every), state
