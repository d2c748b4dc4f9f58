import hashlib

import numpy as np
import pytest

from lcodec.codec import coder, scale_tables
from lcodec.codec.coder import Decoder, Encoder
from lcodec.codec.tables import TOTAL, TableSet, quantize_pmf
from lcodec.errors import FormatError


def laplace_tables():
    pmfs, los = [], []
    for b in (0.5, 2.0, 10.0):
        k = np.arange(-20, 21)
        p = np.exp(-np.abs(k) / b)
        pmfs.append(np.append(p / p.sum() * 0.999, 0.001))
        los.append(-20)
    return TableSet.from_pmfs(pmfs, los)


def test_quantized_tables_are_positive_and_exact():
    f = quantize_pmf(np.array([0.0, 1e-12, 0.5, 0.5]))
    assert f.sum() == TOTAL and f.min() >= 1


def test_round_trip_with_extreme_values_through_escape():
    t = laplace_tables()
    rng = np.random.default_rng(1)
    seqs = [(np.round(rng.laplace(0, 3, 5000)).astype(np.int64), i % 3) for i in range(6)]
    seqs.append((np.array([2**31 - 1, -2**31, 21, -21, 0, 10**6]), 1))
    enc = Encoder()
    for s, tid in seqs:
        enc.encode(s, t, tid)
    dec = Decoder(enc.finish())
    for s, tid in seqs:
        assert np.array_equal(dec.decode(len(s), t, tid), s)


def test_symbol_beyond_32_bits_is_refused():
    with pytest.raises(ValueError):
        Encoder().encode(np.array([2**40]), laplace_tables(), 0)


@pytest.mark.parametrize("family", scale_tables.FAMILIES)
def test_indexed_gaussian_and_laplace_round_trip(family):
    tables = scale_tables.load()
    rng = np.random.default_rng(2)
    scales = rng.uniform(2.0, 300, 20000)
    draw = rng.normal if family == "gaussian" else rng.laplace
    sym = np.round(draw(0, scales)).astype(np.int64)
    ids = np.array([scale_tables.table_id(family, i) for i in scale_tables.scale_index(scales)])
    enc = Encoder()
    enc.encode_indexed(sym, tables, ids)
    data = enc.finish()
    assert np.array_equal(Decoder(data).decode_indexed(tables, ids), sym)
    # matched scales code within 0.2 bit/symbol of the differential entropy
    entropy = np.log2(scales * (np.sqrt(2 * np.pi * np.e) if family == "gaussian" else 2 * np.e)).mean()
    assert len(data) * 8 / len(sym) < entropy + 0.2


def test_golden_bitstream_pins_the_coder():
    """Bytes of a fixed symbol sequence: a change to tables or coder that alters files fails here."""
    tables = scale_tables.load()
    sym = (np.arange(4000) * 7919 % 61 - 30).astype(np.int64)
    ids = np.array([scale_tables.table_id("laplace", i % 64) for i in range(4000)])
    enc = Encoder()
    enc.encode_indexed(sym, tables, ids)
    digest = hashlib.sha256(enc.finish()).hexdigest()
    assert digest == GOLDEN_CODER_SHA256


@pytest.mark.parametrize("n", [1, 7, 300, 5000])
def test_per_symbol_and_per_table_coding_write_the_same_bytes(monkeypatch, n):
    """Small calls are coded with one probability row per symbol, large ones with one model per
    table: both must give identical bytes (files written either way decode either way)."""
    tables = laplace_tables()
    rng = np.random.default_rng(n)
    sym = np.round(rng.laplace(0, 4, n)).astype(np.int64)
    sym[:: 97] = 500                                    # escapes on both paths
    ids = rng.integers(0, len(tables), n)

    def code(limit):
        monkeypatch.setattr(coder, "PER_SYMBOL_MAX", limit)
        enc = Encoder()
        enc.encode_indexed(sym, tables, ids)
        return enc.finish()

    per_table, per_symbol = code(0), code(1 << 30)
    assert per_table == per_symbol
    for limit in (0, 1 << 30):
        monkeypatch.setattr(coder, "PER_SYMBOL_MAX", limit)
        assert np.array_equal(Decoder(per_table).decode_indexed(tables, ids), sym)


def test_per_symbol_path_needs_one_table_size():
    """Tables of different sizes in one call are never coded per symbol (constriction would
    quantize a padded row differently)."""
    small = TableSet.from_pmfs([np.full(5, 0.2), np.full(9, 1 / 9)], [0, 0])
    assert coder._layout(small, np.array([0, 0, 1]))[2] is None
    assert coder._layout(small, np.array([1, 1]))[2].shape == (2, 9)


def test_corrupt_stream_length_is_a_format_error():
    with pytest.raises(FormatError):
        Decoder(b"\x01\x02\x03")


GOLDEN_CODER_SHA256 = "84c0dd76644aa47c161bc87ecd8fd98971cce0e50c08bd2201fb38f72abe136d"
