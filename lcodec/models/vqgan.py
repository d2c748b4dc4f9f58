"""VQGAN extreme: a vector-quantized generative codec below 0.05 bpp, after Mao et al. (2023).

    x --encoder--> z (EMBED x H/16 x W/16) --nearest codeword (cosine)--> index map
    index map --codebook--> code vectors --decoder--> x_hat

One index per 16 x 16 block. The base model has a codebook of 1024 entries (quality 3); the
lower qualities cluster it with k-means into 256 and 64 entries, fine-tuned with the encoder
and decoder frozen, so one encoder/decoder pair serves every rate. Codes live on the unit
sphere (l2-normalised, as ViT-VQGAN does), which keeps a small codebook well used.

The index map is coded under static tables (not the uniform distribution of the published
code), one per context: the clusters of the codewords above and to the left (within a tile,
so every tile decodes alone), decoded diagonal by diagonal. A small bidirectional transformer
(Restorer) predicts indices from their neighbours: it fills the indices of damaged tiles
(`decode --conceal`). It works on code vectors, not on one codebook's ids, so the same
restorer serves every rate.

Coding geometry: a container tile holds the indices of a 256 x 256 pixel block (16 x 16
indices), but the decoder runs on the whole index map (in overlapping windows), so tiles
leave no seams and a lost tile can be filled from its neighbours.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..codec.coder import Decoder as SymbolDecoder
from ..codec.coder import Encoder as SymbolEncoder
from ..codec.tables import TableSet
from ..errors import FormatError
from .mgm import ResBlock   # the same residual block as MGM's
from .registry import model_arch, model_spec
from .state import load_installed

FACTOR = 16            # pixels per index, each side
EMBED = 32             # code vector dimension
WINDOW = 24            # restorer window (indices): a 16 x 16 tile plus a 4-index border
CLUSTERS = 16          # codeword clusters that make the coding contexts (above x left)
ALPHA_PER_CODEWORD = 0.25   # smoothing of each context's table toward the unconditional one
CORE, MARGIN = 64, 8   # decoder windows of CORE x CORE indices with MARGIN indices of context (> its reach)


def _down(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2), ResBlock(cout))


def _up(cin, cout):
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1),
                         nn.LeakyReLU(0.2), ResBlock(cout))


class Quantizer(nn.Module):
    """K codewords on the unit sphere; nearest = largest cosine. The base model updates them by
    exponential moving averages of their assigned encoder outputs (with dead codes restarted);
    the codebook fine-tuning of the smaller codebooks trains them by gradient."""

    def __init__(self, k, dim=EMBED):
        super().__init__()
        self.k = k
        self.codebook = nn.Parameter(F.normalize(torch.randn(k, dim), dim=1), requires_grad=False)
        self.register_buffer("ema_sum", self.codebook.detach().clone())
        self.register_buffer("usage", torch.full((k,), 1.0 / k))

    def codes(self):
        return F.normalize(self.codebook, dim=1)

    def indices(self, z):
        """B x D x H x W normalised latents -> B x H x W int64 indices."""
        return torch.einsum("bdhw,kd->bkhw", z, self.codes()).argmax(1)

    def lookup(self, idx):
        return self.codes()[idx].permute(0, 3, 1, 2)

    @torch.no_grad()
    def init_from(self, z):
        """Codewords = random latents of a batch (a start inside the data)."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        pick = torch.randint(len(flat), (self.k,), device=flat.device)
        self.ema_sum.copy_(F.normalize(flat[pick] + 0.01 * torch.randn_like(flat[pick]), dim=1))
        self.codebook.data.copy_(self.ema_sum)
        self.usage.fill_(1.0 / self.k)

    @torch.no_grad()
    def ema_update(self, z, idx, decay=0.99, use_decay=0.97, floor=0.03):
        """Move each codeword toward the mean of its assigned latents; restart codewords used
        less than floor/k (use tracked over ~30 steps) at random latents of the batch. Returns
        the number restarted."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        onehot = F.one_hot(idx.reshape(-1), self.k).to(flat.dtype)
        self.usage.mul_(use_decay).add_((1 - use_decay) * onehot.mean(0))
        self.ema_sum.mul_(decay).add_((1 - decay) * onehot.t() @ flat)
        dead = self.usage < floor / self.k
        if dead.any():
            rows = torch.nonzero(dead).flatten()
            pick = torch.randint(len(flat), (len(rows),), device=flat.device)
            self.ema_sum[rows] = flat[pick]
            self.usage[rows] = 1.0 / self.k
        self.codebook.data.copy_(F.normalize(self.ema_sum, dim=1))
        return int(dead.sum())


class VQGAN(nn.Module):
    def __init__(self, K=1024, enc=(32, 64, 96, 128, 192), dec=(192, 128, 96, 64, 32)):
        super().__init__()
        e, d = enc, dec
        self.encoder = nn.Sequential(
            nn.Conv2d(3, e[0], 3, padding=1), nn.LeakyReLU(0.2),
            *[_down(e[i], e[i + 1]) for i in range(4)], ResBlock(e[4]), nn.Conv2d(e[4], EMBED, 1))
        self.decoder = nn.Sequential(
            nn.Conv2d(EMBED, d[0], 3, padding=1), nn.LeakyReLU(0.2), ResBlock(d[0]), ResBlock(d[0]),
            *[_up(d[i], d[i + 1]) for i in range(4)], nn.Conv2d(d[4], 3, 3, padding=1))
        self.quantizer = Quantizer(K)
        self.restorer = Restorer()

    def encode_latents(self, x):
        """x in [0, 1], sides multiples of 16 -> normalised latents B x EMBED x H/16 x W/16."""
        return F.normalize(self.encoder(x * 2 - 1), dim=1)

    def decode_codes(self, q):
        return self.decoder(q) * 0.5 + 0.5

    def forward(self, x):
        """Training: (x_hat, latents, straight-through code vectors' targets, indices)."""
        z = self.encode_latents(x)
        idx = self.quantizer.indices(z.detach())
        q = self.quantizer.lookup(idx)
        x_hat = self.decode_codes(z + (q - z).detach())
        return x_hat, z, q, idx


class Restorer(nn.Module):
    """Bidirectional transformer over a WINDOW x WINDOW grid of code vectors: masked positions
    get a learned mask vector, positions outside the image a pad vector; the output at each
    position scores the codewords of whichever codebook is in use by cosine similarity."""

    def __init__(self, dim=160, layers=4, heads=4):
        super().__init__()
        self.inp = nn.Linear(EMBED, dim)
        self.mask = nn.Parameter(torch.zeros(dim))
        self.pad = nn.Parameter(torch.zeros(dim))
        self.pos = nn.Parameter(torch.randn(WINDOW * WINDOW, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 3 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, EMBED))
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(self, codes, masked, outside):
        """codes B x EMBED x W x W, masked/outside B x W x W bool -> B x W x W x EMBED unit vectors."""
        b = codes.shape[0]
        h = self.inp(codes.permute(0, 2, 3, 1).reshape(b, -1, EMBED))
        h = torch.where(masked.reshape(b, -1, 1), self.mask, h)
        h = torch.where(outside.reshape(b, -1, 1), self.pad, h)
        h = self.body(h + self.pos)
        return F.normalize(self.out(h), dim=-1).reshape(b, WINDOW, WINDOW, EMBED)

    def logits(self, codes, masked, outside, codebook):
        return self.log_scale.exp() * self(codes, masked, outside) @ codebook.t()


def build(name, quality):
    arch = model_arch(name, quality)
    return VQGAN(K=arch["K"])


def pad_to(pixels, multiple):
    h, w, _ = pixels.shape
    return np.pad(pixels, ((0, -h % multiple), (0, -w % multiple), (0, 0)), mode="edge")


def windowed(fn, x, scale, core, margin):
    """Apply a convolutional fn (input grid -> output grid `scale` times finer, or coarser for
    scale < 1) to overlapping windows of x (1 x C x H x W), each window `core` input cells plus
    `margin` of context on every side, and stitch the window cores: bounded memory for any
    image, and (margin >= the receptive field that matters) the same result as one pass. fn
    may change the dtype (e.g. take uint8 pixels or give them): only windows are ever float."""
    _, _, h, w = x.shape
    out = None
    for y0 in range(0, h, core):
        for x0 in range(0, w, core):
            ya, xa = max(0, y0 - margin), max(0, x0 - margin)
            yb, xb = min(h, y0 + core + margin), min(w, x0 + core + margin)
            part = fn(x[:, :, ya:yb, xa:xb])
            if out is None:
                out = part.new_empty(1, part.shape[1], int(h * scale), int(w * scale))
            cy, cx = int((y0 - ya) * scale), int((x0 - xa) * scale)
            ch, cw = int(min(core, h - y0) * scale), int(min(core, w - x0) * scale)
            out[:, :, int(y0 * scale):int(y0 * scale) + ch, int(x0 * scale):int(x0 * scale) + cw] = \
                part[:, :, cy:cy + ch, cx:cx + cw]
    return out


@torch.no_grad()
def image_latents(model, pixels, device="cpu"):
    """H x W x 3 uint8 -> 1 x EMBED x ceil(H/16) x ceil(W/16) normalised latents (edge-padded
    image, encoder run in windows of 1024 px with 256 px of context)."""
    x = torch.from_numpy(pad_to(pixels, FACTOR)).permute(2, 0, 1)[None].to(device)
    return windowed(lambda w: model.encode_latents(w.float() / 255.0), x, 1 / FACTOR, CORE * FACTOR,
                    2 * MARGIN * FACTOR)


def image_indices(model, pixels, device="cpu"):
    """H x W x 3 uint8 -> ceil(H/16) x ceil(W/16) int64 index map."""
    return model.quantizer.indices(image_latents(model, pixels, device))[0].cpu().numpy()


@torch.no_grad()
def decode_vectors(model, q, h, w):
    """1 x EMBED x h' x w' code vectors -> the h x w x 3 uint8 image they decode to (decoder in
    windows, each rounded to 8 bits as it comes: no full-size float image)."""
    def to_uint8(window):
        return torch.round(model.decode_codes(window).clamp(0, 1) * 255.0).to(torch.uint8)
    return windowed(to_uint8, q, FACTOR, CORE, MARGIN)[0].permute(1, 2, 0).cpu().numpy()[:h, :w]


def decode_pixels(model, idx, h, w, device="cpu"):
    """Index map -> the h x w x 3 uint8 image it decodes to."""
    return decode_vectors(model, model.quantizer.lookup(torch.from_numpy(idx)[None].to(device)), h, w)


@torch.no_grad()
def restore(model, idx, lost, device="cpu", rounds=4):
    """Fill the positions `lost` (bool map) of an index map with the restorer's predictions,
    one WINDOW x WINDOW window per 16 x 16 block that has lost positions (the block at the
    window's centre, its neighbours as context). Within a window the most confident quarter of
    the still-lost positions is fixed first, then the restorer looks again (`rounds` passes,
    MaskGIT-style, argmax: deterministic), so a lost tile fills from its edges inward.

    Returns (the index map, each lost position holding its most likely codeword; the 1 x EMBED
    x h x w code vectors to decode, each lost position holding instead the mean code vector
    under the restorer's distribution when it was fixed). The mean hedges between plausible
    codewords where the mode commits to one (and is wrong for most lost indices): with 20 % of
    the indices lost it loses about a third less MS-SSIM (docs/vqgan/report.md has both)."""
    idx, lost = idx.copy(), lost.astype(bool)
    h, w = idx.shape
    codebook = model.quantizer.codes()
    means = {}
    step, border = FACTOR, (WINDOW - FACTOR) // 2
    for by in range(0, h, step):
        for bx in range(0, w, step):
            if not lost[by:by + step, bx:bx + step].any():
                continue
            y0, x0 = by - border, bx - border
            win = np.zeros((WINDOW, WINDOW), np.int64)
            outside = np.ones((WINDOW, WINDOW), bool)
            masked = np.zeros((WINDOW, WINDOW), bool)
            ya, yb, xa, xb = max(0, y0), min(h, y0 + WINDOW), max(0, x0), min(w, x0 + WINDOW)
            win[ya - y0:yb - y0, xa - x0:xb - x0] = idx[ya:yb, xa:xb]
            outside[ya - y0:yb - y0, xa - x0:xb - x0] = False
            masked[ya - y0:yb - y0, xa - x0:xb - x0] = lost[ya:yb, xa:xb]
            target = np.zeros_like(masked)               # the centre block's lost positions
            target[by - y0:by - y0 + step, bx - x0:bx - x0 + step] = masked[by - y0:by - y0 + step,
                                                                           bx - x0:bx - x0 + step]
            for r in range(rounds):
                codes = model.quantizer.lookup(torch.from_numpy(win)[None].to(device))
                t = lambda a: torch.from_numpy(a)[None].to(device)  # noqa: E731
                prob = model.restorer.logits(codes, t(masked), t(outside), codebook)[0].softmax(-1)
                conf, pred = (p.cpu().numpy() for p in prob.max(-1))
                todo = np.argwhere(target & masked)
                if not len(todo):
                    break
                n = len(todo) if r == rounds - 1 else -(-len(todo) // (rounds - r))
                order = np.lexsort((todo[:, 1], todo[:, 0], -conf[todo[:, 0], todo[:, 1]]))[:n]
                for y, x in todo[order]:
                    win[y, x], masked[y, x] = pred[y, x], False
                    means[y + y0, x + x0] = prob[y, x] @ codebook
            ys, xs = slice(by, min(h, by + step)), slice(bx, min(w, bx + step))
            idx[ys, xs] = win[by - y0:by - y0 + (ys.stop - by), bx - x0:bx - x0 + (xs.stop - bx)]
    vectors = model.quantizer.lookup(torch.from_numpy(idx)[None].to(device)).clone()
    for (y, x), v in means.items():
        vectors[0, :, y, x] = v
    return idx, vectors


def spherical_kmeans(vectors, weights, k, iters=40, seed=0):
    """k unit centroids of unit vectors (weighted by use): k-means++ start, cosine assignment."""
    g = torch.Generator().manual_seed(seed)
    v, w = F.normalize(vectors.float(), dim=1), weights.float().clamp_min(1e-8)
    cent = [v[torch.multinomial(w, 1, generator=g)].squeeze(0)]
    for _ in range(k - 1):
        d = 1 - (v @ torch.stack(cent).t()).max(1).values
        cent.append(v[torch.multinomial(w * d.clamp_min(1e-8), 1, generator=g)].squeeze(0))
    c = torch.stack(cent)
    for _ in range(iters):
        a = (v @ c.t()).argmax(1)
        s = torch.zeros_like(c).index_add_(0, a, v * w[:, None])
        keep = s.norm(dim=1) > 0
        c[keep] = F.normalize(s[keep], dim=1)
    return c


def context_ids(block, clusters):
    """The context of every index of a tile's block: (cluster of the index above, cluster of
    the index to the left), each `n` (none) outside the block, so tiles decode alone."""
    n = int(clusters.max()) + 1
    up = np.full(block.shape, n)
    up[1:] = clusters[block[:-1]]
    left = np.full(block.shape, n)
    left[:, 1:] = clusters[block[:, :-1]]
    return up * (n + 1) + left


def diagonals(shape):
    """The positions of a block in wavefront order, one array of (rows, cols) per anti-diagonal:
    the indices above and to the left of each are on earlier diagonals."""
    ys, xs = np.indices(shape)
    d = (ys + xs).ravel()
    return [(ys.ravel()[d == k], xs.ravel()[d == k]) for k in range(shape[0] + shape[1] - 1)]


def fit_tables(index_maps, codes, tile, clusters=CLUSTERS):
    """The static tables of a codebook, conditioned on the neighbours: the codewords are
    clustered (k-means on the sphere, weighted by use) into `clusters` groups, and each context
    (cluster above, cluster to the left; tile borders count as none) gets the index frequencies
    that follow it in the training maps, smoothed toward the unconditional frequencies by
    ALPHA_PER_CODEWORD * K pseudo-counts (the escape entry is never used). The cluster of every
    codeword ships with the tables (extra 'clusters')."""
    k = codes.shape[0]
    clusters = min(clusters, k // 4)
    base = np.full(k, 0.5)
    for m in index_maps:
        base += np.bincount(m.ravel(), minlength=k)
    centres = spherical_kmeans(codes, torch.from_numpy(base), clusters)
    cl = (codes.float() @ centres.t()).argmax(1).numpy().astype(np.int64)
    counts = np.zeros(((clusters + 1) ** 2, k))
    for m in index_maps:
        for rows, cols in tile_blocks(m.shape[0] * FACTOR, m.shape[1] * FACTOR, tile):
            block = m[rows, cols]
            np.add.at(counts, (context_ids(block, cl).ravel(), block.ravel()), 1)
    alpha = ALPHA_PER_CODEWORD * k
    p = (counts + alpha * base / base.sum()) / (counts.sum(1, keepdims=True) + alpha)
    return TableSet.from_pmfs([np.append(row, 1e-9) for row in p], [0] * len(p), {"clusters": cl})


def tile_blocks(h, w, tile):
    """(row, col) slices of the index map that each tile of a tile x tile grid covers."""
    from ..codec.tiling import tile_grid
    return [(slice(y // FACTOR, -(-(y + th) // FACTOR)), slice(x // FACTOR, -(-(x + tw) // FACTOR)))
            for y, x, th, tw in tile_grid(h, w, tile)]


class VqganCodec:
    """Whole-image codec: encode_image/decode_image instead of independent tiles (see top)."""

    def __init__(self, model, tables, device, tile, entry=None):
        self.entry, self.device, self.tile = entry, device, tile
        self.model = model.eval().to(device)
        self.tables = tables
        self.k = model.quantizer.k
        self.clusters = tables.extra.get("clusters")
        n = None if self.clusters is None else int(self.clusters.max()) + 1
        if n is None or len(self.clusters) != self.k or self.clusters.min() < 0 or \
                len(tables) != (n + 1) ** 2 or (tables.sizes != self.k + 1).any():
            raise FormatError("VQGAN tables do not match the codebook")

    @classmethod
    def load(cls, name, quality, device):
        entry, model, tables = load_installed(name, quality, build(name, quality))
        return cls(model, tables, device, model_spec(name)["tile"], entry)

    def encode_image(self, pixels):
        h, w, _ = pixels.shape
        idx = image_indices(self.model, pixels, self.device)
        out = []
        for rows, cols in tile_blocks(h, w, self.tile):
            block = idx[rows, cols]
            ctx = context_ids(block, self.clusters)
            enc = SymbolEncoder()
            for d in diagonals(block.shape):
                enc.encode_indexed(block[d], self.tables, ctx[d])
            out.append(enc.finish())
        return out

    def tile_indices(self, payload, shape):
        """Decode one tile's block, diagonal by diagonal (each one's contexts are known)."""
        dec = SymbolDecoder(payload)
        block = np.zeros(shape, np.int64)
        n = int(self.clusters.max()) + 1
        for ys, xs in diagonals(shape):
            up = np.where(ys > 0, self.clusters[block[np.maximum(ys - 1, 0), xs]], n)
            left = np.where(xs > 0, self.clusters[block[ys, np.maximum(xs - 1, 0)]], n)
            vals = dec.decode_indexed(self.tables, up * (n + 1) + left)
            if vals.min(initial=0) < 0 or vals.max(initial=0) >= self.k:
                raise FormatError("decoded codeword index out of range (corrupt tile)")
            block[ys, xs] = vals
        return block

    def index_map(self, tiles, h, w, conceal=False):
        """(index map, lost map, lost tile numbers): tiles is {tile number: payload}. A missing
        tile is an error, or with conceal, lost (as is a tile whose payload does not decode)."""
        hh, ww = -(-h // FACTOR), -(-w // FACTOR)
        idx, lost, lost_tiles = np.zeros((hh, ww), np.int64), np.zeros((hh, ww), bool), []
        for i, (rows, cols) in enumerate(tile_blocks(h, w, self.tile)):
            shape = (rows.stop - rows.start, cols.stop - cols.start)
            try:
                if i not in tiles:
                    raise FormatError(f"tile {i} is damaged or missing")
                idx[rows, cols] = self.tile_indices(tiles[i], shape)
            except FormatError:
                if not conceal:
                    raise
                lost[rows, cols] = True
                lost_tiles.append(i)
        return idx, lost, lost_tiles

    def decode_image(self, tiles, h, w, conceal=False):
        """(H x W x 3 uint8, indices filled by the restorer, the tiles they were in)."""
        idx, lost, lost_tiles = self.index_map(tiles, h, w, conceal)
        filled = int(lost.sum())
        if filled > idx.size // 2:
            raise FormatError(f"{filled} of {idx.size} indices lost: too many to conceal")
        if not filled:
            return decode_pixels(self.model, idx, h, w, self.device), 0, lost_tiles
        vectors = restore(self.model, idx, lost, self.device)[1]
        return decode_vectors(self.model, vectors, h, w), filled, lost_tiles

    def latents(self, payload, h, w):
        """One tile's code vectors (EMBED x ceil(h/16) x ceil(w/16)): no network runs."""
        block = self.tile_indices(payload, (-(-h // FACTOR), -(-w // FACTOR)))
        # codewords normalised on the CPU whatever the device: a GPU's division rounds the last
        # bit differently, and a file's latents must be the same numbers everywhere
        codes = F.normalize(self.model.quantizer.codebook.detach().float().cpu(), dim=1)
        return codes[torch.from_numpy(block)].permute(2, 0, 1)
