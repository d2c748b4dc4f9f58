"""Quantized Gaussian and Laplace models addressed by integer index into a fixed scale table.

For models whose scale comes from a network (hyperpriors), the coder never sees a float
scale: the model maps its scale to the nearest index of SCALES on a deterministic path and
codes (symbol - integer mean) under the frozen table of that index. The tables are built
once by `python -m lcodec.codec.scale_tables`, shipped as scale_tables.npz and checked
against SHA256 below at load time: they are never recomputed from floats when coding.
"""
import math
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .tables import TableSet

PATH = Path(__file__).with_name("scale_tables.npz")
FAMILIES = ("gaussian", "laplace")
SCALES = np.exp(np.linspace(math.log(0.11), math.log(256.0), 64))  # as in common hyperpriors
TAIL = 1e-9  # probability mass left to the escape entry


def _pmf(family, scale):
    """Probabilities of the integers -r..r (bins of width 1 around each integer) + escape."""
    if family == "gaussian":
        cdf = lambda x: 0.5 * math.erfc(-x / (scale * math.sqrt(2.0)))  # noqa: E731
        r = max(1, math.ceil(scale * math.sqrt(2.0) * 4.3))  # erfc(4.3) ~ 1e-9
    else:
        cdf = lambda x: 0.5 * math.exp(x / scale) if x < 0 else 1 - 0.5 * math.exp(-x / scale)  # noqa: E731
        r = max(1, math.ceil(scale * -math.log(2 * TAIL)))
    edges = np.array([cdf(k + 0.5) for k in range(-r - 1, r + 1)])
    p = np.diff(edges)
    escape = max(1.0 - p.sum(), TAIL)
    return np.append(p, escape), -r


def build():
    pmfs, los = [], []
    for family in FAMILIES:
        for s in SCALES:
            p, lo = _pmf(family, float(s))
            pmfs.append(p)
            los.append(lo)
    return TableSet.from_pmfs(pmfs, los, extra={"scales": SCALES})


_loaded = None


def load():
    """The shipped scale tables (verified by sha256)."""
    global _loaded
    if _loaded is None:
        from ..models.registry import sha256_file
        if not PATH.exists():
            raise ModelError("scale_tables.npz is missing from the installation")
        if sha256_file(PATH) != _expected_sha256():
            raise ModelError("scale_tables.npz does not match its registered sha256")
        _loaded = TableSet.from_bytes(PATH.read_bytes())
    return _loaded


def _expected_sha256():
    return PATH.with_suffix(".sha256").read_text().split()[0]


def table_id(family, scale_index):
    """Integer id of the table for (family, scale index)."""
    return FAMILIES.index(family) * len(SCALES) + int(scale_index)


def scale_index(scales):
    """Nearest-above index into the shipped (hashed) scale table, not into SCALES recomputed
    here, whose last bits could depend on the machine's exp; float64 on the CPU."""
    table = load().extra["scales"]
    s = np.asarray(scales, dtype=np.float64)
    return np.clip(np.searchsorted(table, s), 0, len(table) - 1)


if __name__ == "__main__":
    from ..models.registry import sha256_file
    PATH.write_bytes(build().to_bytes())
    PATH.with_suffix(".sha256").write_text(sha256_file(PATH) + "  scale_tables.npz\n")
    print(f"wrote {PATH} ({PATH.stat().st_size} bytes)")
