"""Training VQGAN extreme in three stages, all through `lcodec train vqgan`:

- autoencoder (the base, quality 3, K = 1024): L1 + MS-SSIM (the perceptual term: it runs
  offline, no downloaded backbone) + commitment, codebook by EMA with dead codes restarted,
  and from half-way a patch-GAN discriminator (hinge loss) with VQGAN's adaptive weight;
- codebook (--init-from a model with a larger codebook): k-means of its codewords (weighted by
  their use) into this quality's K, then the codewords fine-tuned through the frozen decoder,
  encoder and decoder frozen (the paper's recipe), L1 + MS-SSIM;
- restorer (--stage restorer): the bidirectional transformer that predicts masked indices,
  autoencoder frozen, on windows of the training images' latents quantized with the model's
  codebook and with k-means reductions of it (so one restorer serves every rate), masked at
  random or as whole 16 x 16 tiles.
"""
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models import vqgan
from ..models.vqgan import build, spherical_kmeans
from ..models.state import load_matching, load_state
from . import data
from .loop import Run, train

BETA = 0.25          # commitment weight
MSSSIM = 0.5         # weight of (1 - MS-SSIM) beside L1
DISC_WEIGHT = 0.2    # times VQGAN's adaptive weight ||grad rec|| / ||grad adv|| at the last layer
GAN_FROM = 0.5       # fraction of the run after which the discriminator joins


class PatchDiscriminator(nn.Module):
    """A small PatchGAN: one real/fake score per ~34 x 34 patch."""

    def __init__(self, c=48):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * c, 1, 4, 1, 1))

    def forward(self, x):
        return self.net(x * 2 - 1)


def reconstruction(x_hat, x):
    from pytorch_msssim import ms_ssim
    return (x_hat - x).abs().mean() + MSSSIM * (1 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0))


def run(name, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch=4, crop=None,
        lr=2e-4, seed=0, val_every=250, init_from=None, lmbda=None, stage=None):
    if lmbda is not None:
        raise SystemExit("vqgan has no rate weight: its rate is set by the codebook size")
    torch.manual_seed(seed)
    model = build(name, quality)
    source = load_state(init_from) if init_from else {}
    if stage is None:
        stage = "codebook" if source and source["quantizer.codebook"].shape[0] != model.quantizer.k else "autoencoder"
    if stage in ("codebook", "restorer") and not source:
        raise SystemExit(f"--stage {stage} needs --init-from weights of a trained vqgan")
    load_matching(model, source)
    sampler = data.CropSampler(data.load_images(data_dir), seed=seed)
    val = data.center_crops(data.load_images(val_dir), 512) if val_dir else []
    if stage == "restorer":
        # windows per step: 16 (what the CPU runs used, whatever their --batch), more with a larger --batch
        return restorer_stage(model, sampler, val, minutes, resume, device, run_dir, lr, val_every, seed,
                              batch=max(16, batch))
    if stage == "codebook" and not resume:
        src_k = source["quantizer.codebook"].shape[0]
        model.quantizer.codebook.data.copy_(spherical_kmeans(
            source["quantizer.codebook"], source.get("quantizer.usage", torch.ones(src_k)), model.quantizer.k))
    return autoencoder_stage(model, stage, sampler, val, minutes, resume, device, run_dir,
                             batch, crop or 192, lr, val_every, fresh=not source)


def autoencoder_stage(model, stage, sampler, val, minutes, resume, device, run_dir, batch, crop, lr, val_every,
                      fresh=True):
    model.to(device)
    disc = PatchDiscriminator().to(device)
    finetune = stage == "codebook"
    if finetune:   # only the codewords learn: encoder, decoder (and restorer) stay as they are
        for p in model.parameters():
            p.requires_grad_(False)
        model.quantizer.codebook.requires_grad_(True)
        groups = [{"params": [model.quantizer.codebook], "lr_scale": 1.0}]
    else:
        gen = [p for n, p in model.named_parameters() if n.startswith(("encoder.", "decoder."))]
        groups = [{"params": gen, "lr_scale": 1.0}, {"params": list(disc.parameters()), "lr_scale": 1.0}]
    opt = torch.optim.Adam(groups, lr=lr, betas=(0.5, 0.9))
    state = Run(run_dir, nn.ModuleDict({"codec": model, "disc": disc}), opt, resume)
    if state.step == 0 and fresh:   # a new codebook starts at real latents; an inherited one is kept
        with torch.no_grad():
            model.quantizer.init_from(model.encode_latents(sampler.batch(8, crop).to(device) + 0.5))
    gan_from = GAN_FROM * (state.elapsed + minutes * 60)
    t0, restarts = time.time(), [0]
    last = model.decoder[-1].weight
    feed = data.Prefetcher(sampler, batch, crop)

    def step_fn(step, cur_lr):
        x = feed.batch(device) + 0.5
        if finetune:
            with torch.no_grad():
                z = model.encode_latents(x)
            idx = model.quantizer.indices(z)
            q = model.quantizer.lookup(idx)
            x_hat = model.decode_codes(q)
            rec = reconstruction(x_hat, x)
            loss = rec + BETA * F.mse_loss(q, z)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.quantizer.codebook.data.copy_(F.normalize(model.quantizer.codebook.data, dim=1))
                model.quantizer.usage.mul_(0.99).add_(0.01 * F.one_hot(idx.reshape(-1), model.quantizer.k).float().mean(0))
            return {"rec": rec.item(), "lr": cur_lr}
        x_hat, z, q, idx = model(x)
        rec = reconstruction(x_hat, x)
        loss = rec + BETA * F.mse_loss(z, q)
        gan = state.elapsed + (time.time() - t0) >= gan_from
        stats = {}
        if gan:
            for p in disc.parameters():
                p.requires_grad_(False)
            adv = -disc(x_hat).mean()
            g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
            g_adv = torch.autograd.grad(adv, last, retain_graph=True)[0]
            w = (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, 1e4).detach() * DISC_WEIGHT
            loss = loss + w * adv
            for p in disc.parameters():
                p.requires_grad_(True)
            stats["adv_w"] = w.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if gan:   # hinge loss on real crops and the (detached) reconstructions
            d_loss = F.relu(1 - disc(x)).mean() + F.relu(1 + disc(x_hat.detach())).mean()
            d_loss.backward()
            stats["d_loss"] = d_loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        restarts[0] += model.quantizer.ema_update(z.detach(), idx)
        psnr = 10 * math.log10(1.0 / max(F.mse_loss(x_hat.detach().clamp(0, 1), x).item(), 1e-12))
        return {"rec": rec.item(), "psnr": psnr, "restarts": restarts[0], "lr": cur_lr, **stats}

    @torch.no_grad()
    def validate():
        return evaluate(model, val, device)

    guess = 40 if not finetune else 80
    return train(state, step_fn, validate, minutes, lr, steps_per_minute_guess=guess, val_every=val_every), state


@torch.no_grad()
def evaluate(model, val, device):
    """PSNR, MS-SSIM, codebook use and the index entropy (bits per index, so bpp ~ H / 256)."""
    if not val:
        return {}
    from pytorch_msssim import ms_ssim
    model.eval()
    psnrs, msssims, counts = [], [], torch.zeros(model.quantizer.k)
    for v in val:
        v = v.to(device) + 0.5
        idx = model.quantizer.indices(model.encode_latents(v))
        x_hat = torch.round(model.decode_codes(model.quantizer.lookup(idx)).clamp(0, 1) * 255) / 255
        psnrs.append(10 * math.log10(1.0 / max(F.mse_loss(x_hat, v).item(), 1e-12)))
        msssims.append(ms_ssim(x_hat, v, data_range=1.0).item())
        counts += torch.bincount(idx.flatten().cpu(), minlength=model.quantizer.k).float()
    model.train()
    p = counts / counts.sum()
    entropy = float(-(p[p > 0] * p[p > 0].log2()).sum())
    return {"val_psnr": sum(psnrs) / len(psnrs), "val_msssim": sum(msssims) / len(msssims),
            "used": int((counts > 0).sum()), "bits_per_index": entropy}


# --- the restorer ---------------------------------------------------------------------------

def latent_maps(model, images, device):
    """Normalised latents of every training photo and of its mirror image (the whole photo,
    windowed as the encoder runs on real files)."""
    return [vqgan.image_latents(model, t.permute(1, 2, 0).numpy(), device)[0]
            for img in images for t in (img, img.flip(-1))]


def masks(b, rng):
    """(masked, outside) B x W x W: half the windows lose 5-40% of their indices at random, half
    lose the whole centre tile (and a few more); a third have an image edge inside them."""
    W, border = vqgan.WINDOW, (vqgan.WINDOW - vqgan.FACTOR) // 2
    masked = rng.random((b, W, W)) < rng.uniform(0.05, 0.4, (b, 1, 1))
    tile = rng.random(b) < 0.5
    masked[tile] = rng.random((int(tile.sum()), W, W)) < 0.05
    masked[tile, border:border + vqgan.FACTOR, border:border + vqgan.FACTOR] = True
    outside = np.zeros((b, W, W), bool)
    for i in np.nonzero(rng.random(b) < 0.33)[0]:
        cut = int(rng.integers(1, border + 1))
        side = int(rng.integers(4))
        sl = [slice(None), slice(None)]
        sl[side % 2] = slice(0, cut) if side < 2 else slice(W - cut, W)
        outside[i][tuple(sl)] = True
    return masked & ~outside, outside


def restorer_stage(model, sampler, val, minutes, resume, device, run_dir, lr, val_every, seed, batch=16):
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.restorer.parameters():
        p.requires_grad_(True)
    model.restorer.train()
    with torch.no_grad():
        maps = latent_maps(model, sampler.images, device)
        k = model.quantizer.k
        books = [model.quantizer.codes()] + [
            spherical_kmeans(model.quantizer.codebook.cpu(), model.quantizer.usage.cpu(), kk).to(device)
            for kk in (256, 64) if kk < k]
        val_maps = [model.encode_latents(v.to(device) + 0.5)[0] for v in val]
    opt = torch.optim.AdamW(model.restorer.parameters(), lr=lr, weight_decay=0.01)
    state = Run(run_dir, nn.ModuleDict({"codec": model}), opt, resume)
    rng = np.random.default_rng(seed + state.step)
    W = vqgan.WINDOW

    def cut(z, y, x):
        """The W x W window of a latent map at (y, x), and where it runs past the map."""
        h, w = min(W, z.shape[1] - y), min(W, z.shape[2] - x)
        out = torch.zeros(vqgan.EMBED, W, W, device=device)
        out[:, :h, :w] = z[:, y:y + h, x:x + w]
        outside = np.ones((W, W), bool)
        outside[:h, :w] = False
        return out, outside

    def quantized(zs, outsides, book):
        z = torch.stack(zs)
        idx = torch.einsum("bdhw,kd->bkhw", z, book).argmax(1)
        return book[idx].permute(0, 3, 1, 2), idx, np.stack(outsides)

    def windows(source, b, book):
        """Random windows of the training latent maps, quantized with `book`."""
        zs, outsides = [], []
        for _ in range(b):
            z = source[int(rng.integers(len(source)))]
            y, x = int(rng.integers(max(1, z.shape[1] - W + 1))), int(rng.integers(max(1, z.shape[2] - W + 1)))
            zw, o = cut(z, y, x)
            zs.append(zw)
            outsides.append(o)
        return quantized(zs, outsides, book)

    def loss_on(codes, idx, masked, outside, book):
        t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
        logits = model.restorer.logits(codes, t(masked), t(outside), book)
        m = t(masked)
        return F.cross_entropy(logits[m], idx[m]), (logits[m].argmax(-1) == idx[m]).float().mean()

    def step_fn(step, cur_lr):
        book = books[int(rng.integers(len(books)))]
        codes, idx, small = windows(maps, batch, book)
        masked, outside = masks(batch, rng)
        outside |= small
        loss, acc = loss_on(codes, idx, masked & ~outside, outside, book)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.restorer.parameters(), 1.0)
        opt.step()
        return {"ce": loss.item(), "acc": acc.item(), "lr": cur_lr}

    @torch.no_grad()
    def validate():
        if not val_maps:
            return {}
        model.restorer.eval()
        vr = np.random.default_rng(0)
        out = {}
        for book in books:
            cuts = [cut(z, y, x) for z in val_maps   # the same windows every time: comparable numbers
                    for y in range(0, max(1, z.shape[1] - W + 1), W) for x in range(0, max(1, z.shape[2] - W + 1), W)]
            codes, idx, outside = quantized([c[0] for c in cuts], [c[1] for c in cuts], book)
            masked = (vr.random(idx.shape) < 0.2) & ~outside
            _, acc = loss_on(codes, idx, masked, outside, book)
            out[f"acc20_k{len(book)}"] = acc.item()
        model.restorer.train()
        return out

    return train(state, step_fn, validate, minutes, lr, steps_per_minute_guess=60, val_every=val_every), state
