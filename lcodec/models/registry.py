"""The model registry: names, modalities, quality levels and their architectures, and the
shipped weight files with their sha256 (from weights/index.json). Imports no torch, so
`lcodec models` answers at once."""
import hashlib
import json
from pathlib import Path

from ..errors import ModelError

WEIGHTS_DIR = Path(__file__).parent / "weights"
INDEX = WEIGHTS_DIR / "index.json"

# Architecture and training settings per model and quality (lowest rate first).
# `step` is the initial quantization step of the latents (before learning); `lmbda` > 0 adds
# the rate of the latents under per-channel densities to the loss (rate-aware WaLLoC).
MODELS = {
    "walloc-rgb": {
        "modality": "image",
        "family": "walloc",
        "description": "WaLLoC: CDF 9/7 wavelet packets (J=3) + linear 1x1 encoder + residual decoder",
        "qualities": {
            1: {"latent": 12, "step": 0.15, "lmbda": 2.0e-3, "note": "16x reduction, rate-aware"},
            2: {"latent": 12, "step": 0.15, "lmbda": 0.0, "note": "16x reduction (paper)"},
            3: {"latent": 48, "step": 0.08, "lmbda": 0.0, "note": "4x reduction (paper)"},
        },
        "arch": {"channels": 3, "levels": 3, "hidden": 128, "blocks": 4, "bits": 8, "dims": 2},
        "tile": 1024,
    },
    "walloc-stereo": {
        "modality": "audio",
        "family": "walloc",
        "description": "WaLLoC audio: CDF 9/7 packets (J=8) + linear encoder + residual decoder + post-filter; mid/side",
        # one single-channel model codes mono, and stereo as mid + side (see models/walloc_audio.py)
        "qualities": {
            1: {"latent": 64, "step": 0.40, "lmbda": 0.0, "note": "4x reduction, coarse step"},
            2: {"latent": 128, "step": 0.08, "lmbda": 0.0, "note": "2x reduction (MSE, as the paper)"},
            3: {"latent": 256, "step": 0.025, "lmbda": 0.0, "bits": 10, "note": "no reduction, 10-bit (MSE)"},
        },
        "arch": {"channels": 1, "levels": 8, "hidden": 256, "blocks": 4, "bits": 8, "dims": 1,
                 "kernel": 3, "postfilter": 65},
        "rate": 44100,          # the model's sample rate: other rates are resampled to it and back
        "segment": 1 << 17,     # samples per independently coded segment (~3 s)...
        "overlap": 1024,        # ...plus this many shared with the next one, cross-faded on decode
        "train_crop": 16384,
    },
    "mgm": {
        "modality": "image",
        "family": "mgm",
        "description": "MGM: Gaussian-mixture prior, multi-codebook VQ at 1/16 and 1/32 (q4: + a refine stage), rate-trained, parallel decode",
        # m1/k1: codebooks/codewords of the fine level (1/16), m2/k2: the coarse level (1/32),
        # m3/k3: a refine stage on the fine level's remaining error (1/16, q4 only: trained from
        # q3 with the coarse and fine levels fixed); the fixed-length bound is
        # (m1*log2 k1 + m3*log2 k3)/256 + (m2*log2 k2)/1024 bpp; rate_weight: the
        # encoder picks argmin T||v - c||^2 + rate_weight * code length in nats (mgm.index_penalties)
        # instead of the nearest codeword (q3 keeps the nearest)
        "qualities": {
            1: {"m1": 2, "k1": 256, "m2": 4, "k2": 256, "lmbda": 0.0035, "rate_weight": 0.5,
                "note": "bound 0.094 bpp, RD choice"},
            2: {"m1": 8, "k1": 256, "m2": 4, "k2": 256, "lmbda": 0.0067, "rate_weight": 0.25,
                "note": "bound 0.281 bpp, RD choice"},
            3: {"m1": 16, "k1": 256, "m2": 8, "k2": 256, "lmbda": 0.0130, "note": "bound 0.563 bpp"},
            4: {"m1": 16, "k1": 256, "m2": 8, "k2": 256, "m3": 16, "k3": 256, "lmbda": 0.0400,
                "rate_weight": 0.25, "note": "refine stage, bound 1.063 bpp, RD choice"},
        },
        "arch": {"N": 96, "C": 128},
        "tile": 1024,
    },
    "vqgan": {
        "modality": "image",
        "family": "vqgan",
        "description": "VQGAN extreme: f=16 VQ autoencoder, k-means codebooks 1024/256/64, static priors, index restorer",
        # K: codewords; one index per 16 x 16 block, so the fixed-length bound is log2(K)/256 bpp
        "qualities": {
            1: {"K": 64, "note": "K=64 (k-means), bound 0.023 bpp"},
            2: {"K": 256, "note": "K=256 (k-means), bound 0.031 bpp"},
            3: {"K": 1024, "note": "K=1024 (base), bound 0.039 bpp"},
        },
        "arch": {},
        "tile": 256,   # a tile holds the indices of 256 x 256 px; the decoder sees the whole map
    },
    "bmshj2018-hyperprior": {
        "modality": "image",
        "family": "hyperprior",
        "benchmark": True,      # a standard learned peer for `lcodec bench`, not one of our codecs
        "description": "Peer: CompressAI's bmshj2018 scale hyperprior (GDN, N=128, M=192), coded by lcodec",
        # lambdas of CompressAI's MSE zoo qualities 1, 3 and 5, the highest that it runs at
        # N=128, M=192 (its qualities 6-8 use N=192, M=320: over 16 MiB of fp16 weights);
        # loss = lmbda * 255^2 * MSE + bpp
        "qualities": {
            1: {"lmbda": 0.0018, "note": "zoo quality 1"},
            2: {"lmbda": 0.0067, "note": "zoo quality 3"},
            3: {"lmbda": 0.0250, "note": "zoo quality 5"},
        },
        "arch": {"N": 128, "M": 192},
        "tile": 1024,
    },
    "mbt2018-mean": {
        "modality": "image",
        "family": "hyperprior",
        "benchmark": True,
        "description": "Peer and CLC's base: CompressAI's mbt2018-mean mean-scale hyperprior (N=128, M=192), coded by lcodec",
        # the lambdas of bmshj2018-hyperprior, so the two peers and CLC share their rate points
        "qualities": {
            1: {"lmbda": 0.0018, "note": "zoo quality 1 lambda"},
            2: {"lmbda": 0.0067, "note": "zoo quality 3 lambda"},
            3: {"lmbda": 0.0250, "note": "zoo quality 5 lambda"},
        },
        "arch": {"N": 128, "M": 192, "means": True},
        "tile": 1024,
    },
    "clc": {
        "modality": "image",
        "family": "clc",
        "description": "CLC: mbt2018-mean conditioned on R=2 references retrieved from a 1,024-entry learned dictionary",
        # A: matching (query/key) width; R: references per tile; entries: dictionary size, k-means
        # over dictionary_crops random crops; ref_stride: every ref_stride-th latent position of
        # each reference is kept (4 x 4 of 16 x 16: the conditioning reads the references'
        # statistics, not their layout; docs/clc/same_photo_training.md)
        "qualities": {
            1: {"lmbda": 0.0018, "note": "mbt2018-mean q1 + references", "moments": True},
            2: {"lmbda": 0.0067, "note": "mbt2018-mean q2 + references"},
            3: {"lmbda": 0.0250, "note": "mbt2018-mean q3 + references"},
        },
        "arch": {"N": 128, "M": 192, "A": 64, "R": 2, "entries": 1024, "dictionary_crops": 6000, "ref_stride": 4},
        "tile": 1024,
    },
}


def model_spec(name):
    if name not in MODELS:
        raise ModelError(f"unknown model '{name}' (installed: {', '.join(sorted(MODELS))})")
    return MODELS[name]


def quality_spec(name, quality):
    spec = model_spec(name)
    if quality not in spec["qualities"]:
        qs = ", ".join(str(q) for q in sorted(spec["qualities"]))
        raise ModelError(f"model '{name}' has no quality {quality} (valid: {qs})")
    return spec["qualities"][quality]


def model_arch(name, quality):
    """Constructor arguments of the model for (name, quality): the model's arch, plus the
    fields a quality sets for itself (WaLLoC's latent width and bits, MGM's codebooks, CLC's
    moments path)."""
    spec, q = model_spec(name), quality_spec(name, quality)
    return {**spec["arch"], **{k: q[k] for k in ("latent", "bits", "m1", "k1", "m2", "k2", "m3", "k3", "K", "moments") if k in q}}


def load_index():
    if not INDEX.exists():
        return {}
    return json.loads(INDEX.read_text())


def weights_entry(name, quality):
    """The shipped weights record for (name, quality): files, sha256s, version, ledger figures."""
    quality_spec(name, quality)
    entry = load_index().get(f"{name}/q{quality}")
    if entry is None:
        raise ModelError(f"no trained weights installed for {name} q{quality}")
    return entry


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified_path(entry, key):
    """Path of a shipped file, after checking its sha256 against the registry."""
    path = WEIGHTS_DIR / entry[key]
    if not path.exists():
        raise ModelError(f"weights file {entry[key]} is missing from the installation")
    digest = sha256_file(path)
    if digest != entry[key.replace("file", "sha256")]:
        raise ModelError(f"weights file {entry[key]} does not match its registered sha256")
    return path


def list_models():
    """One dict per model: name, modality, qualities (lowest rate first), version, sha256s, ledger."""
    index = load_index()
    out = []
    for name, spec in MODELS.items():
        qualities = sorted(spec["qualities"])
        per_q = {}
        for q in qualities:
            e = index.get(f"{name}/q{q}")
            per_q[str(q)] = {"note": spec["qualities"][q].get("note", ""), "installed": e is not None,
                             **({k: e[k] for k in ("version", "weights_sha256", "tables_sha256", "val")
                                 if k in e} if e else {})}
        versions = sorted({v["version"] for v in per_q.values() if "version" in v})
        out.append({
            "name": name, "modality": spec["modality"], "family": spec["family"],
            "benchmark": bool(spec.get("benchmark")),
            "description": spec["description"], "qualities": qualities,
            "version": versions[-1] if versions else None,
            "sha256": {q: v.get("weights_sha256") for q, v in per_q.items()},
            "levels": per_q,
        })
    return out
