"""Training MGM with the shared loop, data, crops and batch: loss = lmbda * 255^2 * MSE + bpp
(the indices' code length under the learned mixture weights) + a small commitment term that
keeps the latents near their codewords; codebooks start at real latents, dead codewords are
re-seeded, and validation reports codebook usage."""
import math
import time

import torch

from ..models.mgm import build
from ..models.registry import quality_spec
from ..models.state import load_matching, load_state
from . import data
from . import dist
from .loop import Run, train

COMMIT = 1e-3     # weight of the mean ||v - sg(q)||^2 per latent value, beside the pixel MSE
RESEED_EVERY = 50
DECAY = 0.98      # usage EMA: a codeword unused for ~200 steps falls below the re-seeding floor


def run(name, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch=8, crop=None,
        lr=3e-4, seed=0, val_every=500, init_from=None, lmbda=None, prior_weight=0.0, freeze_encoder=False):
    """Train one MGM quality level. init_from: weights of this level, or of a sibling level
    (the transforms carry over; codebooks of another shape start afresh from real latents).
    prior_weight: codes sampled from the mixture posterior with the weights to this power
    (Quantizer.forward); validation then takes the same rate-weighted choice.
    freeze_encoder: the coarse and fine levels keep their indices (the analysis, up2 and their
    codebooks stay fixed, their codes are the inference choice); the refine stage and the
    synthesis (up1, g_s) train: how a refine level is added to a trained sibling."""
    torch.manual_seed(seed)
    lmbda = quality_spec(name, quality)["lmbda"] if lmbda is None else lmbda
    crop = crop or 128
    late_crop = crop * 2
    model = build(name, quality)
    sampler = data.CropSampler(data.load_images(data_dir), seed=seed)
    val = data.center_crops(data.load_images(val_dir), 512) if val_dir else []
    loaded = load_matching(model, load_state(init_from)) if init_from else set()
    model.to(device)
    quantizers = {"fine": model.fine, "coarse": model.coarse, "refine": model.refine}
    if freeze_encoder:
        model.fixed_base = True
        for part in (model.g_a, model.down1, model.down2, model.up2, model.coarse, model.fine):
            part.requires_grad_(False)
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    fast = {n for n, _ in trained if n.endswith(("log_temp", "prior_logits"))}
    opt = torch.optim.Adam([  # temperatures and mixture weights move in larger steps
        {"params": [p for n, p in trained if n not in fast], "lr_scale": 1.0},
        {"params": [p for n, p in trained if n in fast], "lr_scale": 10.0}], lr=lr)
    state = Run(run_dir, torch.nn.ModuleDict({"codec": model}), opt, resume)
    if state.step == 0:
        with torch.no_grad():  # codewords not inherited start at real latents, coarse level first
            x = sampler.batch(batch, crop).to(device) + 0.5
            f1, f2 = model.features(x)
            if "coarse.codebooks" not in loaded:
                model.coarse.init_from(f2)
            r1 = f1 - model.up2(model.coarse.lookup(model.coarse.indices(f2)))
            if "fine.codebooks" not in loaded:
                model.fine.init_from(r1)
            if model.refine is not None and "refine.codebooks" not in loaded:
                model.refine.init_from(r1 - model.fine.lookup(model.fine.indices(r1)))
    t0 = time.time()
    reseeded = [0]

    def step_fn(step, cur_lr):
        late = time.time() - t0 >= 0.6 * minutes * 60
        c, b = (late_crop, max(1, batch // 4)) if late else (crop, batch)
        x = sampler.batch(b, c).to(device) + 0.5          # the sampler gives [-0.5, 0.5]
        x_hat, bits, levels = model(x, prior_weight)
        mse = torch.mean((x_hat - x) ** 2)
        bpp = bits / (b * c * c)
        commit = sum(torch.mean((v - q.detach()) ** 2) for v, q, _ in levels.values())
        loss = lmbda * 255 ** 2 * (mse + COMMIT * commit) + bpp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trained], 1.0)
        opt.step()
        for key, (v, _, hard) in levels.items():
            quant = quantizers[key]
            if not quant.codebooks.requires_grad:   # a frozen level keeps its codewords
                continue
            if step % RESEED_EVERY == 0:
                reseeded[0] += quant.track_and_reseed(v, hard, DECAY)
                dist.broadcast_state(quant)   # torchrun: rank 0's new codewords (drawn from its batch) on all
            else:
                quant.usage.mul_(DECAY).add_((1 - DECAY) * hard.reshape(-1, quant.m, quant.k).mean(0))
        return {"psnr": 10 * math.log10(1.0 / max(mse.item(), 1e-12)), "bpp": bpp.item(),
                "reseeded": reseeded[0], "lr": cur_lr}

    @torch.no_grad()
    def validate():
        if not val:
            return {}
        model.eval()
        present = {k: q for k, q in quantizers.items() if q is not None}
        psnrs, bpps, used = [], [], {k: set() for k in present}
        penalties = [q.prior_penalty(prior_weight) if q is not None else None for q in quantizers.values()]
        for v in val:
            v = v[..., :v.shape[-2] // 32 * 32, :v.shape[-1] // 32 * 32].to(device) + 0.5
            maps = model.encode_indices(v, penalties)
            x_hat = torch.round(model.decode_indices(*maps).clamp(0, 1) * 255) / 255
            psnrs.append(10 * math.log10(1.0 / max(torch.mean((x_hat - v) ** 2).item(), 1e-12)))
            bits = 0.0
            for (key, quant), idx in zip(present.items(), maps):   # maps: (fine, coarse[, refine])
                nl = quant.neg_log2_prior()
                for j in range(quant.m):
                    bits += nl[j][idx[0, j]].sum().item()
                    used[key] |= {(j, int(u)) for u in idx[0, j].unique()}
            bpps.append(bits / v[0, 0].numel())
        model.train()
        return {"val_psnr": sum(psnrs) / len(psnrs), "val_bpp_est": sum(bpps) / len(bpps),
                **{f"{k}_used": len(used[k]) / (q.m * q.k) for k, q in present.items()},
                "log_temp": float(model.fine.log_temp.mean())}

    return train(state, step_fn, validate, minutes, lr, steps_per_minute_guess=60, val_every=val_every), state
