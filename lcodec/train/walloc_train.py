"""Training WaLLoC (images): PCA initialisation, MSE (+ lambda * rate) loss, fp16 export."""
import math
import time

import torch

from ..models.registry import model_spec, quality_spec
from ..models.walloc import WaLLoC
from . import data
from .loop import Run, train


def build(name, quality):
    spec, q = model_spec(name), quality_spec(name, quality)
    return WaLLoC(latent=q["latent"], **spec["arch"])


def step_to_scale(model, step):
    """Companding scale s whose quantization step at zero equals `step` (slope amp*sqrt(2/pi)/s)."""
    return step * model.amp * math.sqrt(2.0 / math.pi)


@torch.no_grad()
def pca_init(model, sampler, step, n_crops=64, crop=128):
    """Encoder = top principal directions of the packet coefficients; the decoder's linear path
    = their transpose: at step 0 the model is a quantized PCA codec, not noise."""
    x = sampler.batch(n_crops, crop)
    w = model.to_packets(x).movedim(1, -1).reshape(-1, model.packet).double()
    mean = w.mean(0)
    cov = torch.cov((w - mean).T)
    evals, evecs = torch.linalg.eigh(cov)
    basis = evecs[:, evals.argsort(descending=True)[: model.latent]].T  # latent x packet
    shape = model.encoder.weight.shape
    model.encoder.weight.copy_(basis.reshape(shape).float())
    model.encoder.bias.copy_(-(basis @ mean).float())
    model.skip.weight.copy_(basis.T.reshape(model.skip.weight.shape).float())
    model.skip.bias.copy_(mean.float())
    model.log_scale.fill_(math.log(step_to_scale(model, step)))


def psnr(mse):
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def run(name, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch=8, crop=128,
        lr=5e-4, seed=0, pca=True, val_every=500):
    torch.manual_seed(seed)
    qspec = quality_spec(name, quality)
    model = build(name, quality)
    sampler = data.CropSampler(data.load_images(data_dir), seed=seed)
    val = data.center_crops(data.load_images(val_dir), 512) if val_dir else []
    if pca:
        pca_init(model, sampler, qspec["step"])
    else:
        model.log_scale.data.fill_(math.log(step_to_scale(model, qspec["step"])))
    lmbda = qspec["lmbda"]
    density = None
    if lmbda > 0:
        from compressai.entropy_models import EntropyBottleneck
        density = EntropyBottleneck(model.latent)
    model.to(device)
    params = [{"params": [p for n, p in model.named_parameters() if n != "log_scale"], "lr_scale": 1.0}]
    if lmbda > 0:  # the quantization step is learned only where a rate term gives it a reason
        params.append({"params": [model.log_scale], "lr_scale": 0.1})
        density.to(device)
        params.append({"params": [p for n, p in density.named_parameters() if not n.endswith("quantiles")],
                       "lr_scale": 1.0})
    opt = torch.optim.Adam(params, lr=lr)
    state = Run(run_dir, torch.nn.ModuleDict({"codec": model, **({"density": density} if density else {})}),
                opt, resume)

    t0 = time.time()

    def step_fn(step, cur_lr):
        c = crop if time.time() - t0 < 0.6 * minutes * 60 else crop * 2  # small crops early, larger late
        b = batch if c == crop else max(1, batch // 4)
        x = sampler.batch(b, c).to(device)
        y = model.compand(model.analysis(x))
        if density is not None:
            y_t, lik = density(y)
            rate = -torch.log2(lik.clamp_min(1e-9)).sum() / (b * c * c)
        else:
            y_t = y + torch.empty_like(y).uniform_(-0.5, 0.5)
            rate = torch.zeros((), device=device)
        x_hat = model.synthesis(y_t)
        mse = torch.mean((x_hat - x) ** 2)
        loss = mse + lmbda * rate
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"psnr": psnr(mse.item()), "bpp~": rate.item(), "lr": cur_lr}

    @torch.no_grad()
    def validate():
        model.eval()
        mses, ents = [], []
        thr = model.thresholds()
        for v in val:
            v = v.to(device)
            sym = model.symbols(v, thr)
            x_hat = model.reconstruct(sym)
            mses.append(torch.mean((torch.round((x_hat + 0.5) * 255) / 255 - 0.5 - v) ** 2).item())
            # zeroth-order entropy per channel: an upper bound on what the context coder spends
            s = sym[0].flatten(1).long() + model.max_symbol
            bits = 0.0
            for ch in s:
                p = torch.bincount(ch, minlength=2 * model.max_symbol + 1).double()
                p = p[p > 0] / ch.numel()
                bits += float(-(p * p.log2()).sum()) * ch.numel()
            ents.append(bits / (v.shape[-1] * v.shape[-2]))
        model.train()
        if not val:
            return {}
        return {"val_psnr": sum(psnr(m) for m in mses) / len(mses), "val_bpp_h0": sum(ents) / len(ents)}

    return train(state, step_fn, validate, minutes, lr, steps_per_minute_guess=60, val_every=val_every), state
