"""Training the bmshj2018-hyperprior peer with the same loop, data, crops and batch as WaLLoC:
loss = lmbda * 255^2 * MSE + bpp (CompressAI's convention), plus the factorized density's
quantile (aux) loss, which only moves the medians that the coder offsets z by."""
import math
import time

import torch

from ..models import hyperprior
from ..models.registry import quality_spec
from ..models.state import load_state
from . import data
from .loop import Run, train


def bits(likelihoods):
    return sum(-torch.log2(v).sum() for v in likelihoods.values())


def run(name, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch=8, crop=None,
        lr=3e-4, seed=0, val_every=500, init_from=None, lmbda=None):
    torch.manual_seed(seed)
    lmbda = quality_spec(name, quality)["lmbda"] if lmbda is None else lmbda
    crop = crop or 128
    late_crop = crop * 2
    model = hyperprior.build(name, quality)
    if init_from:
        model.load_state_dict(load_state(init_from))
    sampler = data.CropSampler(data.load_images(data_dir), seed=seed)
    val = data.center_crops(data.load_images(val_dir), 512) if val_dir else []
    model.to(device)
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam([{"params": main, "lr_scale": 1.0}, {"params": aux, "lr_scale": 10.0}], lr=lr)
    state = Run(run_dir, torch.nn.ModuleDict({"codec": model}), opt, resume)
    t0 = time.time()

    def step_fn(step, cur_lr):
        late = time.time() - t0 >= 0.6 * minutes * 60
        c, b = (late_crop, max(1, batch // 4)) if late else (crop, batch)
        x = sampler.batch(b, c).to(device) + 0.5          # the sampler gives [-0.5, 0.5]
        out = model(x)
        mse = torch.mean((out["x_hat"] - x) ** 2)
        bpp = bits(out["likelihoods"]) / (b * c * c)
        loss = lmbda * 255 ** 2 * mse + bpp + model.aux_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main, 1.0)
        opt.step()
        return {"psnr": 10 * math.log10(1.0 / max(mse.item(), 1e-12)), "bpp": bpp.item(), "lr": cur_lr}

    @torch.no_grad()
    def validate():
        if not val:
            return {}
        model.eval()
        psnrs, bpps = [], []
        for v in val:
            v = v[..., :v.shape[-2] // 64 * 64, :v.shape[-1] // 64 * 64].to(device) + 0.5  # the 64 px stride
            out = model(v)
            x_hat = torch.round(out["x_hat"].clamp(0, 1) * 255) / 255
            psnrs.append(10 * math.log10(1.0 / max(torch.mean((x_hat - v) ** 2).item(), 1e-12)))
            bpps.append(bits(out["likelihoods"]).item() / v[0, 0].numel())
        model.train()
        return {"val_psnr": sum(psnrs) / len(psnrs), "val_bpp_est": sum(bpps) / len(bpps)}

    return train(state, step_fn, validate, minutes, lr, steps_per_minute_guess=60, val_every=val_every), state
