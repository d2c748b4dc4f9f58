"""Training WaLLoC (images): PCA initialisation, MSE (+ lambda * rate) loss, validation."""
import math
import time

import torch

from ..models.registry import model_arch, model_spec, quality_spec
from ..models.walloc import WaLLoC
from . import data
from .loop import Run, train


def build(name, quality):
    return WaLLoC(**model_arch(name, quality))


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


def _teacher(name, quality, device):
    """The installed weights of another quality of this model, frozen, as a distillation teacher."""
    from ..models import registry
    from ..models.state import load_state
    from ..errors import InputError
    if model_spec(name)["modality"] != "image":
        raise InputError("--teacher is for image WaLLoC models")
    teacher = build(name, quality)
    teacher.load_state_dict(load_state(registry.verified_path(registry.weights_entry(name, quality), "weights_file")))
    return teacher.to(device).eval().requires_grad_(False)


def psnr(mse):
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def _data(spec, data_dir, val_dir, stride, seed):
    """(training sampler, validation batches) for the model's modality."""
    if spec["modality"] == "audio":
        sampler = data.SignalSampler(data.load_signals(data_dir, spec["rate"]), seed=seed)
        val = data.signal_crops(data.load_signals(val_dir, spec["rate"]), 1 << 17, stride) if val_dir else []
        return sampler, val
    sampler = data.CropSampler(data.load_images(data_dir), seed=seed)
    return sampler, (data.center_crops(data.load_images(val_dir), 512) if val_dir else [])


def run(name, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch=8, crop=None,
        lr=5e-4, seed=0, pca=True, val_every=500, init_from=None, lmbda=None, step_scale=1.0,
        freeze_encoder=False, teacher=None, distill=0.5, crop_schedule=True, learn_step=True, lr_schedule=True):
    """Train (or, with init_from = a shipped weights file, fine-tune) one WaLLoC quality level.
    Images train on crop x crop squares, audio on crop-sample excerpts; the last 40% of the
    budget uses 4x larger crops (and a quarter of the batch). lmbda overrides the quality's rate
    weight (for experiments). step_scale multiplies the quantization step after initialisation;
    with freeze_encoder only the decoder trains, so the latents (and the rate) stay as they are:
    together they move a trained model to a lower rate and teach its decoder the coarser step.
    teacher (an installed quality of the same model) adds distillation: a share `distill` of the
    distortion term fits the teacher's decoded image instead of the original (so the balance
    of distortion against rate stays as it was). crop_schedule=False keeps the first crop size to
    the end; learn_step=False keeps a rate-aware model's quantization step fixed; lr_schedule=False
    trains at the peak rate throughout, without warm-up or cosine decay (measurements)."""
    torch.manual_seed(seed)
    spec, qspec = model_spec(name), quality_spec(name, quality)
    audio = spec["modality"] == "audio"
    crop = crop or spec.get("train_crop", 128)
    late_crop = crop * (4 if audio else 2)
    model = build(name, quality)
    sampler, val = _data(spec, data_dir, val_dir, model.stride(), seed)
    if init_from:
        from ..models.state import load_state
        model.load_state_dict(load_state(init_from))
    elif pca:
        pca_init(model, sampler, qspec["step"], crop=crop)
    else:
        model.log_scale.data.fill_(math.log(step_to_scale(model, qspec["step"])))
    model.log_scale.data += math.log(step_scale)
    lmbda = qspec["lmbda"] if lmbda is None else lmbda
    density = ChannelDensity(model.latent, model.max_symbol) if lmbda > 0 else None
    model.to(device)
    teach = _teacher(name, teacher, device) if teacher else None
    frozen = {"log_scale"} | ({f"encoder.{k}" for k, _ in model.encoder.named_parameters()} if freeze_encoder else set())
    params = [{"params": [p for n, p in model.named_parameters() if n not in frozen], "lr_scale": 1.0}]
    if lmbda > 0 and not freeze_encoder:  # the step is learned only where a rate term gives it a reason
        if learn_step:
            params.append({"params": [model.log_scale], "lr_scale": 0.1})
        density.to(device)
        params.append({"params": density.parameters(), "lr_scale": 10.0})
    opt = torch.optim.Adam(params, lr=lr)
    state = Run(run_dir, torch.nn.ModuleDict({"codec": model, **({"density": density} if density else {})}),
                opt, resume)

    t0 = time.time()

    def step_fn(step, cur_lr):
        late = crop_schedule and time.time() - t0 >= 0.6 * minutes * 60
        c, b = (late_crop, max(1, batch // 4)) if late else (crop, batch)
        x = sampler.batch(b, c).to(device)
        y = model.compand(model.analysis(x))
        y_t = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        rate = density.bits(y_t) / x[:, 0].numel() if density is not None else torch.zeros((), device=device)
        x_hat = model.synthesis(y_t)
        mse = torch.mean((x_hat - x) ** 2)
        loss = mse + lmbda * rate
        if teach is not None:
            with torch.no_grad():
                target = teach(x, noise=False)[0].clamp(-0.5, 0.5)   # the teacher's decoded image
            loss = loss + distill * (torch.mean((x_hat - target) ** 2) - mse)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        fit = {"snr": 10 * math.log10(torch.mean(x ** 2).item() / max(mse.item(), 1e-20))} if audio \
            else {"psnr": psnr(mse.item())}
        return {**fit, "bits~": rate.item(), "lr": cur_lr}

    @torch.no_grad()
    def validate():
        if not val:
            return {}
        model.eval()
        err = sig = bits = samples = 0.0
        psnrs = []
        thr = model.thresholds()
        for v in val:
            v = v.to(device)
            sym = model.symbols(v, thr)
            x_hat = model.reconstruct(sym) if not audio else model.synthesis(sym.float()).clamp(-1, 1)
            if not audio:  # what the decoder outputs: 8-bit pixels
                x_hat = torch.round((x_hat + 0.5) * 255) / 255 - 0.5
            e = torch.sum((x_hat - v) ** 2).item()
            err, sig, samples = err + e, sig + torch.sum(v ** 2).item(), samples + v[:, 0].numel()
            psnrs.append(psnr(e / v.numel()))
            # zeroth-order entropy per channel: an upper bound on what the context coder spends
            for ch in sym[0].flatten(1).long() + model.max_symbol:
                p = torch.bincount(ch, minlength=2 * model.max_symbol + 1).double()
                p = p[p > 0] / ch.numel()
                bits += float(-(p * p.log2()).sum()) * ch.numel()
        model.train()
        if audio:  # per mono signal: SNR over all validation audio, kbps at the model rate
            return {"val_snr": 10 * math.log10(sig / max(err, 1e-20)),
                    "val_kbps_h0": bits / samples * spec["rate"] / 1000}
        return {"val_psnr": sum(psnrs) / len(psnrs), "val_bpp_h0": bits / samples}

    return train(state, step_fn, validate, minutes, lr, steps_per_minute_guess=60, val_every=val_every,
                 schedule=lr_schedule), state
