"""Training WaLLoC (images): PCA initialisation, MSE (+ lambda * rate) loss, validation."""
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


class ChannelDensity(torch.nn.Module):
    """A learned probability table per latent channel over the integers -M..M: the rate term of
    rate-aware WaLLoC is the code length of the (noisy) latents under these tables, with
    log-probabilities interpolated linearly between integers so the encoder gets a gradient."""

    def __init__(self, channels, max_symbol):
        super().__init__()
        self.m = max_symbol
        k = torch.arange(-max_symbol, max_symbol + 1, dtype=torch.float32)
        self.logits = torch.nn.Parameter((-k.abs() / 4.0).repeat(channels, 1))  # a Laplace start

    def bits(self, y):
        logp = torch.log_softmax(self.logits, dim=1) / math.log(2.0)     # C x (2M+1)
        u = y.movedim(1, -1).reshape(-1, y.shape[1]).clamp(-self.m, self.m) + self.m
        lo = u.detach().floor().clamp(max=2 * self.m - 1)
        f = u - lo
        lo = lo.long()
        ch = torch.arange(y.shape[1], device=y.device).expand_as(lo)
        lp = (1 - f) * logp[ch, lo] + f * logp[ch, lo + 1]
        return -lp.sum()


def psnr(mse):
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def run(name, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch=8, crop=128,
        lr=5e-4, seed=0, pca=True, val_every=500, init_from=None):
    """Train (or, with init_from = a shipped weights file, fine-tune) one WaLLoC quality level."""
    torch.manual_seed(seed)
    qspec = quality_spec(name, quality)
    model = build(name, quality)
    sampler = data.CropSampler(data.load_images(data_dir), seed=seed)
    val = data.center_crops(data.load_images(val_dir), 512) if val_dir else []
    if init_from:
        from ..models.walloc_image import load_state
        model.load_state_dict(load_state(init_from))
    elif pca:
        pca_init(model, sampler, qspec["step"])
    else:
        model.log_scale.data.fill_(math.log(step_to_scale(model, qspec["step"])))
    lmbda = qspec["lmbda"]
    density = ChannelDensity(model.latent, model.max_symbol) if lmbda > 0 else None
    model.to(device)
    params = [{"params": [p for n, p in model.named_parameters() if n != "log_scale"], "lr_scale": 1.0}]
    if lmbda > 0:  # the quantization step is learned only where a rate term gives it a reason
        params.append({"params": [model.log_scale], "lr_scale": 0.1})
        density.to(device)
        params.append({"params": density.parameters(), "lr_scale": 10.0})
    opt = torch.optim.Adam(params, lr=lr)
    state = Run(run_dir, torch.nn.ModuleDict({"codec": model, **({"density": density} if density else {})}),
                opt, resume)

    t0 = time.time()

    def step_fn(step, cur_lr):
        c = crop if time.time() - t0 < 0.6 * minutes * 60 else crop * 2  # small crops early, larger late
        b = batch if c == crop else max(1, batch // 4)
        x = sampler.batch(b, c).to(device)
        y = model.compand(model.analysis(x))
        y_t = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        rate = density.bits(y_t) / (b * c * c) if density is not None else torch.zeros((), device=device)
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
