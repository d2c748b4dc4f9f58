"""CLC: conditional latent coding with a learned reference dictionary (Wu et al., AAAI 2025),
built as the paper describes it, on the mbt2018-mean base codec (models/hyperprior.py).

- Dictionary (built offline from the training photos, `build_dictionary`): multi-scale pooled
  features of many crops, standardised, reduced by PCA, clustered by k-means; each cluster's
  reference is the crop nearest its centroid. What ships (a tensor file whose sha256 is in every
  .lcf header) is the feature projection, the centroids, and each reference's quantized latent
  round(g_a(reference)) as int16, every ref_stride-th position of it (registry): the decoder
  needs no reference pixels.
- Retrieval (encoder only): the tile's feature -> the R nearest centroids. Their ids are range
  coded (uniform over the dictionary) at the head of the tile stream, so they count in the bpp.
- Conditional Latent Matching: the decoder does not have y before decoding it, so the
  reference latents are aligned to the hyperprior's prediction of y, h_s(z_hat), which both
  ends have: a dot-product correlation between a query of that prediction and keys of every
  reference position, softmax-normalised, gathers an aligned reference latent per position.
- Conditional Latent Synthesis: a small conv net fuses the aligned references with the
  prediction into a conditioning latent c, which shifts the entropy parameters (means and
  scales) and is added to y_hat before the synthesis transform. Both injections start at zero,
  so an untrained CLC is exactly its base codec.
Everything that sets the entropy parameters runs on the float64 CPU reference path at both ends
(see hyperprior.py), so files stay decodable across devices.
"""
import copy
import io
import math

import numpy as np
import torch
from compressai.models import MeanScaleHyperprior
from torch import nn

from ..codec.tables import TableSet
from ..errors import FormatError, ModelError
from .hyperprior import HyperpriorCodec
from .registry import model_arch, model_spec, verified_path
from .state import load_installed

SCALES = (1, 2, 4)      # pooling factors of the retrieval features
REF_SIZE = 256          # reference crops: 16 x 16 latent positions each


def retrieval_features(x):
    """Multi-scale pooled features of images x (B x 3 x H x W, float in [0, 1]): at each scale,
    2x2-pooled colour means, colour standard deviations and 2x2-pooled horizontal and vertical
    luma gradient magnitudes. B x 69, float64. Tiles under 32 px a side are first enlarged
    (nearest neighbour) so every scale has a 2 x 2 grid of at least 4 x 4 pixels."""
    x = x.double()
    if min(x.shape[-2:]) < 32:
        x = torch.nn.functional.interpolate(x, size=(max(32, x.shape[-2]), max(32, x.shape[-1])), mode="nearest")
    feats = []
    for s in SCALES:
        xs = torch.nn.functional.avg_pool2d(x, s) if s > 1 else x
        luma = 0.299 * xs[:, 0] + 0.587 * xs[:, 1] + 0.114 * xs[:, 2]
        dx = (luma[:, :, 1:] - luma[:, :, :-1]).abs()[:, None]
        dy = (luma[:, 1:] - luma[:, :-1]).abs()[:, None]
        pool = torch.nn.functional.adaptive_avg_pool2d
        feats += [pool(xs, 2).flatten(1), xs.flatten(2).std(-1), 4 * pool(dx, 2).flatten(1), 4 * pool(dy, 2).flatten(1)]
    return torch.cat(feats, 1)


def project(features, dictionary):
    d = dictionary
    return ((features - d["feat_mean"]) / d["feat_std"]) @ d["pca"].T


def nearest(projected, centroids, r, exclude=None):
    """Ids of the r nearest centroids per row (ties to the lower id); `exclude` (B x D bool)
    removes entries (training: references cut from the same photo as the crop)."""
    dist = torch.cdist(projected.double(), centroids.double())
    if exclude is not None:
        dist = dist.masked_fill(exclude, float("inf"))
    return torch.sort(dist, dim=1, stable=True).indices[:, :r]


def build_dictionary(images, entries, dims=16, count=2000, size=None, seed=0):
    """The offline dictionary from a list of 3 x H x W uint8 photos: {'feat_mean', 'feat_std',
    'pca', 'centroids' (float64), 'crops' (entries x 3 x size x size uint8), 'source' (photo
    index of each reference)}. Built on one torch thread: LAPACK's SVD rounds differently with
    more, and at 1,024 entries that changed 57 of the references, so a seed would not name one
    dictionary."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build_dictionary(images, entries, dims, count, size, seed)
    finally:
        torch.set_num_threads(threads)


def _build_dictionary(images, entries, dims, count, size, seed):
    from scipy.cluster.vq import kmeans2
    size = size or REF_SIZE
    rng = np.random.default_rng(seed)
    crops, source = [], []
    for _ in range(count):
        i = int(rng.integers(len(images)))
        _, h, w = images[i].shape
        c = min(size, h, w)
        y, x = int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1))
        crops.append(images[i][:, y:y + c, x:x + c])
        source.append(i)
    feats = torch.cat([retrieval_features(c[None].double() / 255) for c in crops])
    mean, std = feats.mean(0), feats.std(0).clamp_min(1e-6)
    z = (feats - mean) / std
    pca = torch.linalg.svd(z, full_matrices=False).Vh[:dims]
    proj = (z @ pca.T).numpy()
    centroids, _ = kmeans2(proj, entries, seed=seed, minit="++")
    centroids = torch.from_numpy(centroids)
    pick = torch.cdist(centroids, torch.from_numpy(proj)).argmin(1)   # the crop nearest each centroid
    return {"feat_mean": mean, "feat_std": std, "pca": pca, "centroids": centroids,
            "crops": torch.stack([crops[int(p)] for p in pick]),
            "source": torch.tensor([source[int(p)] for p in pick])}


def reference_latents(model, crops, stride=1, batch=8):
    """round(g_a(crop)) of every reference crop (uint8), every `stride`-th position kept, as
    int16 (what the dictionary ships)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            x = crops[i:i + batch].float().to(next(model.parameters()).device) / 255
            out.append(torch.round(model.g_a(x)[..., ::stride, ::stride]).cpu().to(torch.int16))
    return torch.cat(out)


def build(name, quality):
    arch = model_arch(name, quality)
    return ClcNet(arch["N"], arch["M"], arch["A"], arch["R"], arch.get("moments", False))


class Conditioner(nn.Module):
    """Matching + synthesis of the conditioning latent, and the entropy parameters it shifts:
    everything the decoder must reproduce exactly (run in float64 on the CPU by the codec)."""

    def __init__(self, N, M, A, R=2, moments=False):
        super().__init__()
        self.A = A
        self.query = nn.Conv2d(2 * M, A, 1)
        self.key = nn.Conv2d(M, A, 1)
        self.fuse = nn.Sequential(nn.Conv2d(3 * M, N, 1), nn.LeakyReLU(inplace=True),
                                  nn.Conv2d(N, N, 3, padding=1), nn.LeakyReLU(inplace=True),
                                  nn.Conv2d(N, M, 1))
        self.to_params = nn.Conv2d(M, 2 * M, 1)
        nn.init.zeros_(self.to_params.weight)   # start as the base codec
        nn.init.zeros_(self.to_params.bias)
        # the moments path: each reference's per-channel mean and spread, straight into c. The
        # ablations found the conditioning reads the references' statistics, not their layout;
        # attention can average values but not take their spread, and it pools all references
        # alike where the nearest matters most. Zero at the start, so a model without it loads
        # and starts unchanged.
        self.moments = nn.Conv2d(2 * R * M, M, 1) if moments else None
        if moments:
            nn.init.zeros_(self.moments.weight)
            nn.init.zeros_(self.moments.bias)

    def forward(self, base, refs):
        """(entropy parameters B x 2M x h x w, conditioning latent c B x M x h x w) from the
        hyperprior's prediction `base` (B x 2M x h x w) and references (B x R x M x hr x wr)."""
        c = self.condition(base, refs)
        return base + self.to_params(c), c

    def condition(self, base, refs):
        """Matching (attention of the prediction over every reference position), then synthesis
        of the conditioning latent c."""
        b, r, m, hr, wr = refs.shape
        q = self.query(base).flatten(2).transpose(1, 2)                           # B x hw x A
        flat = refs.reshape(b * r, m, hr, wr)
        k = self.key(flat).reshape(b, r, self.A, hr * wr).permute(0, 1, 3, 2).reshape(b, -1, self.A)
        v = flat.reshape(b, r, m, hr * wr).permute(0, 1, 3, 2).reshape(b, -1, m)  # B x K x M
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.A), dim=-1)   # B x hw x K
        aligned = (att @ v).transpose(1, 2).reshape(b, m, *base.shape[-2:])
        c = self.fuse(torch.cat([aligned, base], 1))
        if self.moments is not None:
            per_ref = refs.flatten(3)                                               # B x R x M x hr wr
            stats = torch.cat([per_ref.mean(-1), per_ref.std(-1, unbiased=False)], 2)  # B x R x 2M
            c = c + self.moments(stats.reshape(b, -1, 1, 1))
        return c


class ClcNet(MeanScaleHyperprior):
    """mbt2018-mean (same module names, so its weights load) + the conditioner and the
    conditioning of the synthesis."""

    def __init__(self, N, M, A, R=2, moments=False):
        super().__init__(N=N, M=M)
        self.cond = Conditioner(N, M, A, R, moments)
        self.to_synthesis = nn.Conv2d(M, M, 1)
        nn.init.zeros_(self.to_synthesis.weight)
        nn.init.zeros_(self.to_synthesis.bias)

    def forward(self, x, refs):
        y = self.g_a(x)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        params, c = self.cond(self.h_s(z_hat), refs)
        scales, means = params.chunk(2, 1)
        y_hat, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        x_hat = self.g_s(y_hat + self.to_synthesis(c))
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}


# ---- the shipped dictionary ---------------------------------------------------------------
DICT_KEYS = ("feat_mean", "feat_std", "pca", "centroids", "latents")


def dictionary_bytes(d):
    buf = io.BytesIO()
    torch.save({k: d[k].contiguous() for k in DICT_KEYS}, buf)
    return buf.getvalue()


def load_dictionary_bytes(data, what="dictionary"):
    d = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(d, dict) or set(d) != set(DICT_KEYS) or d["latents"].dtype != torch.int16 \
            or d["latents"].ndim != 4 or len(d["latents"]) != len(d["centroids"]):
        raise ModelError(f"{what}: not a CLC dictionary")
    return {k: v.double() if k != "latents" else v for k, v in d.items()}


def load_dictionary(path):
    return load_dictionary_bytes(path.read_bytes(), path.name)


def id_table(entries):
    """Uniform table over the dictionary's ids (+ the escape entry every table has)."""
    return TableSet.from_pmfs([np.append(np.ones(entries), 1e-9)], [0])


class ClcCodec(HyperpriorCodec):
    def __init__(self, model, z_tables, dictionary, device, tile, refs, entry=None):
        super().__init__(model, z_tables, device, tile, entry)
        self.dictionary = dictionary
        self.refs = refs
        self.entries = len(dictionary["centroids"])
        self.ids = id_table(self.entries)
        self.refs64 = dictionary["latents"].double()
        self.cond64 = copy.deepcopy(self.model.cond).cpu().double()   # the reference path

    @classmethod
    def load(cls, name, quality, device):
        entry, model, tables = load_installed(name, quality, build(name, quality))
        dictionary = load_dictionary(verified_path(entry, "dictionary_file"))
        return cls(model, tables, dictionary, device, model_spec(name)["tile"], model_arch(name, quality)["R"], entry)

    def projected(self, pixels):
        """A tile's (H x W x 3 uint8) retrieval features in the dictionary's PCA space, 1 x dims."""
        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].double() / 255
        return project(retrieval_features(x), self.dictionary)

    def retrieve(self, pixels):
        """The ids of the tile's R nearest entries (ties to the lower id)."""
        return nearest(self.projected(pixels), self.dictionary["centroids"], self.refs)[0].numpy().astype(np.int64)

    def side_encode(self, enc, pixels):
        ids = self.retrieve(pixels)
        enc.encode_indexed(ids, self.ids, np.zeros(len(ids), dtype=np.int64))
        return ids

    def side_decode(self, dec):
        ids = dec.decode_indexed(self.ids, np.zeros(self.refs, dtype=np.int64))
        if ids.min() < 0 or ids.max() >= self.entries:
            raise FormatError("reference id out of range (corrupt tile)")
        return ids

    def hyper_params64(self, z_hat, ids):
        with torch.no_grad():
            params, c = self.cond64(self.h_s64(z_hat), self.refs64[torch.from_numpy(ids)][None])
        scales, means = params.chunk(2, 1)
        return scales, means, c

    def synthesize(self, y_hat, cond):
        c = cond.to(device=y_hat.device, dtype=y_hat.dtype)
        return self.model.g_s(y_hat + self.model.to_synthesis(c))
