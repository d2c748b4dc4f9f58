"""MGM: a multivariate Gaussian mixture prior with multi-codebook vector quantization, after
McQuic (Zhu et al., CVPR 2022), with a real rate term.

    x --g_a--> f0 (C x H/8) --down1--> f1 (1/16) --down2--> f2 (1/32)
    coarse level:  i2 = argmin_c ||f2 - c||   (m2 codebooks of k2 codewords, C/m2-dim sub-vectors)
    fine level:    p1 = up2(q2);  i1 = argmin_c ||(f1 - p1) - c||   (the residual is coded)
    refine level (optional, the top quality): i3 = argmin_c ||(f1 - p1 - q1) - c||, q1 += q3
    synthesis:     f1_hat = p1 + q1 --up1--> 1/8 --g_s--> x_hat   (coarse to fine, no context model)

The codewords are the means of the mixture; its weights are learned per codebook, and the
rate term of the loss is the code length of the chosen indices under them, so training trades
bits for distortion instead of leaving the rate fixed by (m, k, stride) as the paper does.
Training samples codes by straight-through Gumbel-softmax over logits -||v - c||^2 * T (T a
learned temperature per codebook); inference takes the argmin, or where the quality sets a
rate_weight w, argmin T ||v - c||^2 + w * code length (index_penalties). Codewords left unused are
re-seeded from the batch. Indices are coded under static integer tables (one per level and
codebook) fitted on the training set at export: integers only, so any device decodes a file
bit-exactly. Attention blocks are left out: on two CPU cores their cost buys less than width.

Indices travel as the tuple (fine, coarse) or (fine, coarse, refine); tables and the coded
stream take the levels in the order coarse, fine, refine (MGM.levels).
"""
import math

import numpy as np
import torch
from torch import nn

from ..codec.coder import Decoder, Encoder
from ..codec.tables import TableSet
from ..errors import FormatError
from .registry import model_arch, model_spec, quality_spec
from .state import load_installed

STRIDE = 32  # the coarse level's resolution


def _conv(cin, cout, k=5, s=2):
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def _deconv(cin, cout, k=5, s=2):
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class Quantizer(nn.Module):
    """m codebooks of k codewords over C/m-dimensional sub-vectors of a C-channel map."""

    def __init__(self, channels, m, k):
        super().__init__()
        if channels % m:
            raise ValueError("channels must divide into m sub-vectors")
        self.m, self.k, self.d = m, k, channels // m
        self.codebooks = nn.Parameter(torch.randn(m, k, self.d) * 0.1)
        self.log_temp = nn.Parameter(torch.zeros(m))          # logits = -||v - c||^2 * exp(log_temp)
        self.prior_logits = nn.Parameter(torch.zeros(m, k))   # the mixture weights: the rate model
        self.register_buffer("usage", torch.full((m, k), 1.0 / k))  # EMA of code use (re-seeding)

    def split(self, x):
        b, c, h, w = x.shape
        return x.permute(0, 2, 3, 1).reshape(b, h, w, self.m, self.d)

    def merge(self, v):
        b, h, w, m, d = v.shape
        return v.reshape(b, h, w, m * d).permute(0, 3, 1, 2)

    def distances(self, v):
        """Squared distances B x H x W x m x k of every sub-vector to its codebook's codewords."""
        cb = self.codebooks
        return ((v * v).sum(-1, keepdim=True) - 2 * torch.einsum("bhwmd,mkd->bhwmk", v, cb)
                + (cb * cb).sum(-1))

    def indices(self, x, penalty=None):
        """B x m x H x W int64 codeword indices (the inference path): the nearest codeword, or
        with `penalty` (m x k, from index_penalties) the entropy-constrained choice
        argmin T ||v - c||^2 + penalty, which trades a little distortion for shorter codes."""
        d = self.distances(self.split(x))
        if penalty is not None:
            d = d * self.log_temp.exp()[:, None] + penalty
        return d.argmin(-1).permute(0, 3, 1, 2)

    def lookup(self, idx):
        """B x m x H x W indices -> B x C x H x W code vectors."""
        v = torch.stack([self.codebooks[j][idx[:, j]] for j in range(self.m)], dim=3)  # B H W m d
        return self.merge(v)

    def neg_log2_prior(self):
        return -torch.log_softmax(self.prior_logits, dim=-1) / math.log(2.0)

    def prior_penalty(self, weight):
        """index_penalties' m x k penalty with the learned mixture weights in place of the frozen
        tables (training and its validation), or None for weight 0."""
        return -weight * torch.log_softmax(self.prior_logits.detach(), dim=-1) if weight else None

    def forward(self, x, prior_weight=0.0, sample=True):
        """Training: straight-through Gumbel-softmax codes (sample=False: the inference choice,
        for a level that stays fixed while the rest trains). Returns (code vectors, bits, one-hot
        argmax codes) with bits the code length of the sampled indices under the prior; the
        argmax codes (what inference would pick) are what codebook usage is tracked on.
        prior_weight w adds w log(mixture weight) to the logits: codes are then sampled from the
        mixture posterior (w = 1) that the encoder's rate-weighted choice maximises, so the
        decoder trains on the indices it will be sent. The weights enter detached: they stay a
        rate model, fitted by the bits term alone."""
        v = self.split(x)
        logits = -self.distances(v) * self.log_temp.exp()[:, None]
        if prior_weight:
            logits = logits - self.prior_penalty(prior_weight)
        g = -torch.log(torch.empty_like(logits).exponential_().clamp_min(1e-12)) if sample else 0  # Gumbel(0, 1)
        soft = torch.softmax(logits + g, dim=-1)
        hard = torch.nn.functional.one_hot(soft.argmax(-1), self.k).to(soft.dtype)
        st = hard + soft - soft.detach()
        q = torch.einsum("bhwmk,mkd->bhwmd", st, self.codebooks)
        bits = (st * self.neg_log2_prior()).sum()
        nearest = torch.nn.functional.one_hot(logits.detach().argmax(-1), self.k).to(soft.dtype)
        return self.merge(q), bits, nearest

    @torch.no_grad()
    def track_and_reseed(self, x, hard, decay=0.99, floor=0.02):
        """Update the usage EMA; codewords used less than floor/k re-start at batch sub-vectors."""
        use = hard.reshape(-1, self.m, self.k).mean(0)
        self.usage.mul_(decay).add_((1 - decay) * use)
        dead = self.usage < floor / self.k
        if dead.any():
            v = self.split(x.detach()).reshape(-1, self.m, self.d)
            for j in torch.nonzero(dead.any(1)).flatten().tolist():
                rows = torch.nonzero(dead[j]).flatten()
                pick = torch.randint(len(v), (len(rows),), device=v.device)
                self.codebooks[j, rows] = v[pick, j] + 0.01 * torch.randn_like(v[pick, j])
                self.prior_logits[j, rows] = self.prior_logits[j].mean()
                self.usage[j, rows] = 1.0 / self.k
        return int(dead.sum())

    @torch.no_grad()
    def init_from(self, x):
        """Codewords = random sub-vectors of real latents (a start inside the data)."""
        v = self.split(x.detach()).reshape(-1, self.m, self.d)
        pick = torch.randint(len(v), (self.k,), device=v.device)
        spread = v.std(0, keepdim=True).permute(1, 0, 2)                      # m x 1 x d
        self.codebooks.copy_(v[pick].permute(1, 0, 2) + 0.05 * spread * torch.randn_like(self.codebooks))
        # a temperature that makes the nearest codeword likely from the start (logit gaps ~10)
        d = self.distances(self.split(x.detach())).reshape(-1, self.m, self.k)
        self.log_temp.copy_(torch.log(10.0 / d.median(-1).values.median(0).values.clamp_min(1e-12)))


class MGM(nn.Module):
    def __init__(self, N=96, C=128, m1=4, k1=256, m2=4, k2=256, m3=0, k3=256):
        super().__init__()
        from compressai.layers import GDN
        self.C = C
        self.g_a = nn.Sequential(_conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, C), ResBlock(C))
        self.down1 = _conv(C, C, 3)
        self.down2 = nn.Sequential(nn.LeakyReLU(0.2), _conv(C, C, 3))
        self.up2 = nn.Sequential(_deconv(C, C, 3), nn.LeakyReLU(0.2), nn.Conv2d(C, C, 3, padding=1))
        self.up1 = nn.Sequential(ResBlock(C), _deconv(C, C, 3))
        self.g_s = nn.Sequential(ResBlock(C), _deconv(C, N), GDN(N, inverse=True), _deconv(N, N),
                                 GDN(N, inverse=True), _deconv(N, 3))
        self.fine, self.coarse = Quantizer(C, m1, k1), Quantizer(C, m2, k2)
        # m3 > 0: a second stage at 1/16 codes what the fine level leaves of its residual
        self.refine = Quantizer(C, m3, k3) if m3 else None
        self.fixed_base = False   # training: coarse and fine codes are the inference choice

    def levels(self):
        """The quantizers in table and stream order: coarse, fine (, refine)."""
        return [self.coarse, self.fine] + ([self.refine] if self.refine is not None else [])

    def table_ids(self):
        """Per level in table order, the ids of its codebooks' tables (int arrays of length m)."""
        firsts = np.cumsum([0] + [q.m for q in self.levels()])
        return [first + np.arange(q.m) for q, first in zip(self.levels(), firsts)]

    def in_table_order(self, indices):
        """(fine, coarse[, refine]) index maps -> [(quantizer, maps)] in table order."""
        i1, i2, *rest = indices
        return list(zip(self.levels(), [i2, i1, *rest]))

    def features(self, x):
        f1 = self.down1(self.g_a(x))
        return f1, self.down2(f1)

    def forward(self, x, prior_weight=0.0):
        """Training pass: (x_hat, bits, {level: (quantizer input, code vectors, argmax one-hots)})."""
        f1, f2 = self.features(x)
        sample = not self.fixed_base
        q2, b2, h2 = self.coarse(f2, prior_weight, sample)
        p1 = self.up2(q2)
        r1 = f1 - p1
        q1, b1, h1 = self.fine(r1, prior_weight, sample)
        levels, bits = {"fine": (r1, q1, h1), "coarse": (f2, q2, h2)}, b1 + b2
        if self.refine is not None:
            e1 = r1 - q1
            q3, b3, h3 = self.refine(e1, prior_weight)
            levels["refine"] = (e1, q3, h3)
            q1, bits = q1 + q3, bits + b3
        return self.g_s(self.up1(p1 + q1)), bits, levels

    @torch.no_grad()
    def encode_indices(self, x, penalties=(None, None, None)):
        """The inference path: (fine indices B x m1 x H/16 x W/16, coarse B x m2 x H/32 x W/32
        [, refine B x m3 x H/16 x W/16]); penalties: (fine, coarse[, refine]) from
        index_penalties, or None for the nearest codewords."""
        return self.quantize(*self.features(x), penalties)

    @torch.no_grad()
    def quantize(self, f1, f2, penalties=(None, None, None)):
        """The index choice on analysis features (f1, f2) = features(x)."""
        penalties = tuple(penalties) + (None,) * (3 - len(penalties))
        i2 = self.coarse.indices(f2, penalties[1])
        r1 = f1 - self.up2(self.coarse.lookup(i2))
        i1 = self.fine.indices(r1, penalties[0])
        if self.refine is None:
            return i1, i2
        return i1, i2, self.refine.indices(r1 - self.fine.lookup(i1), penalties[2])

    def code_vectors(self, i1, i2, i3=None):
        """(fine residual code vectors, the refine stage's added, coarse code vectors): no
        network runs."""
        q1 = self.fine.lookup(i1)
        return (q1 if i3 is None else q1 + self.refine.lookup(i3)), self.coarse.lookup(i2)

    @torch.no_grad()
    def decode_indices(self, i1, i2, i3=None):
        q1, q2 = self.code_vectors(i1, i2, i3)
        return self.g_s(self.up1(self.up2(q2) + q1))


def build(name, quality):
    return MGM(**model_arch(name, quality))


def fit_tables(index_maps, model):
    """Static tables, one per (level, codebook) in table order (coarse codebooks first, then
    fine, then refine); each the frequencies of its indices over the training tiles (+0.5 so
    every codeword stays codable)."""
    counts = [np.full(q.k, 0.5) for q in model.levels() for _ in range(q.m)]
    for maps in index_maps:
        for ids, (q, idx) in zip(model.table_ids(), model.in_table_order(maps)):
            for j, t in enumerate(ids):
                counts[t] += np.bincount(idx[j].ravel(), minlength=q.k)
    pmfs = [np.append(c / c.sum(), 1e-9) for c in counts]  # the escape entry is never used
    return TableSet.from_pmfs(pmfs, [0] * len(pmfs))


def index_penalties(tables, model, weight, device="cpu"):
    """What the rate-weighted index choice adds to each codeword's T ||v - c||^2: weight times
    its code length in nats under the frozen tables (weight 1: the mixture component of highest
    posterior, the tables taken as the mixture weights; 0: the nearest). (fine m1 x k1, coarse
    m2 x k2[, refine m3 x k3]) float32 tensors, or Nones for weight 0. The decoder never needs
    them: any choice decodes."""
    def level(q, ids):
        if not weight:
            return None
        p = np.stack([tables.probabilities(t)[:q.k] for t in ids])
        return torch.from_numpy(-weight * np.log(p)).float().to(device)
    coarse, fine, *refine = [level(q, ids) for q, ids in zip(model.levels(), model.table_ids())]
    return (fine, coarse, *refine)


def fit_rate_weighted_tables(tiles, model, weight, rounds=2):
    """Tables for the rate-weighted choice, which depends on the tables it is coded with: fitted
    first on the nearest codewords, then refitted on the choice the previous tables make. The
    analysis runs once per tile; only the index choice is redone each round."""
    with torch.no_grad():
        features = [model.features(tile_tensor(t)) for t in tiles]

    def index_maps(penalties):
        return [_numpy(model.quantize(f1, f2, penalties)) for f1, f2 in features]
    tables = fit_tables(index_maps((None, None)), model)
    for _ in range(rounds if weight else 0):
        tables = fit_tables(index_maps(index_penalties(tables, model, weight)), model)
    return tables


def tile_tensor(pixels, device="cpu"):
    """H x W x 3 uint8 tile -> 1 x 3 x H' x W' float in [0, 1], edge-padded to a multiple of 32."""
    h, w, _ = pixels.shape
    padded = np.pad(pixels, ((0, -h % STRIDE), (0, -w % STRIDE), (0, 0)), mode="edge")
    return torch.from_numpy(padded).permute(2, 0, 1)[None].to(device).float() / 255.0


def _numpy(indices):
    return tuple(i[0].cpu().numpy() for i in indices)


def tile_indices(model, pixels, device="cpu", penalties=(None, None, None)):
    """H x W x 3 uint8 tile -> (fine m1 x h x w, coarse m2 x h' x w'[, refine m3 x h x w])
    numpy indices."""
    return _numpy(model.encode_indices(tile_tensor(pixels, device), penalties))


class MgmCodec:
    def __init__(self, model, tables, device, tile, entry=None, rate_weight=0.0):
        self.entry, self.device, self.tile = entry, device, tile
        self.model = model.eval().to(device)
        self.tables = tables
        if len(tables) != sum(q.m for q in model.levels()):
            raise FormatError("MGM tables do not match the model's codebooks")
        self.stride = 16
        self.penalties = index_penalties(tables, model, rate_weight, device)

    @classmethod
    def load(cls, name, quality, device):
        entry, model, tables = load_installed(name, quality, build(name, quality))
        return cls(model, tables, device, model_spec(name)["tile"], entry,
                   quality_spec(name, quality).get("rate_weight", 0.0))

    def _layout(self, h, w):
        """[(quantizer, index map shape, table ids)] in table and stream order, for an h x w tile:
        the coarse level at 1/32, the fine (and refine) level at 1/16."""
        h2, w2 = -(-h // STRIDE), -(-w // STRIDE)
        out = []
        for q, ids in zip(self.model.levels(), self.model.table_ids()):
            shape = (q.m, h2, w2) if q is self.model.coarse else (q.m, 2 * h2, 2 * w2)
            out.append((q, shape, np.broadcast_to(ids[:, None, None], shape)))
        return out

    def encode_tile(self, pixels):
        maps = tile_indices(self.model, pixels, self.device, self.penalties)
        h, w, _ = pixels.shape
        enc = Encoder()
        for (_, idx), (_, _, ids) in zip(self.model.in_table_order(maps), self._layout(h, w)):
            enc.encode_indexed(idx, self.tables, ids)
        return enc.finish()

    def decode_symbols(self, payload, h, w):
        """The tile's index maps, (fine, coarse[, refine]) as tile_indices gives them."""
        dec = Decoder(payload)
        maps = []
        for q, shape, ids in self._layout(h, w):
            idx = dec.decode_indexed(self.tables, ids).reshape(shape)
            if idx.min(initial=0) < 0 or idx.max(initial=0) >= q.k:
                raise FormatError("decoded codeword index out of range (corrupt tile)")
            maps.append(idx)
        i2, i1, *rest = maps
        return (i1, i2, *rest)

    def _tensors(self, maps):
        return [torch.from_numpy(i)[None].to(self.device) for i in maps]

    def latents(self, payload, h, w):
        """The dequantized code vectors at 1/16 (2C x ceil(h/16) x ceil(w/16)): the fine level's
        residual codewords (plus the refine stage's), then the coarse level's codewords repeated
        2x2. No network runs."""
        with torch.no_grad():
            q1, q2 = self.model.code_vectors(*self._tensors(self.decode_symbols(payload, h, w)))
        z = torch.cat([q1, q2.repeat_interleave(2, -2).repeat_interleave(2, -1)], dim=1)[0]
        return z[:, :-(-h // 16), :-(-w // 16)].float().cpu()

    def decode_tile(self, payload, h, w):
        x = self.model.decode_indices(*self._tensors(self.decode_symbols(payload, h, w)))
        x = torch.round(x[0].clamp(0, 1) * 255.0).to(torch.uint8)
        return x.permute(1, 2, 0).cpu().numpy()[:h, :w]
