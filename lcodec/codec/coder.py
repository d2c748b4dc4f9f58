"""Entropy coding of integer symbols on constriction's range coder (FIFO: decode order =
encode order). Symbols are coded under frozen integer tables (TableSet) chosen by integer id;
a symbol outside a table's support is coded as the escape entry followed by its raw 32-bit
value, so any int32 round-trips exactly."""
import functools

import numpy as np

from ..errors import FormatError

CODER_NAME = "constriction-range"
RAW_MIN, RAW_MAX = -(1 << 31), (1 << 31) - 1


@functools.cache   # package metadata lookups cost ~1 ms: every file open asks
def coder_version():
    from importlib.metadata import version
    return version("constriction")


def _uniform16():
    import constriction
    return constriction.stream.model.Uniform(1 << 16)


def _runs(tables, sorted_ids):
    """(constriction models, symbol counts) of the runs of one table each, in coding order."""
    cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    return tables.models(sorted_ids[starts]), np.diff(np.append(starts, len(sorted_ids))).tolist()


def _table_order(table_ids, tables):
    """The coding order: symbols sorted by table id, stable within a table."""
    # numpy sorts 16-bit integers by radix (linear time) when asked for a stable sort; ids are
    # valid indices into the table set, so they fit when the set has at most 2^15 tables
    key = table_ids.astype(np.int16) if len(tables) <= 1 << 15 else table_ids
    return np.argsort(key, kind="stable")


# A call of at most this many probabilities (symbols x table size) is coded in one constriction
# call with a probability row per symbol, instead of one call per table: the same bits (see
# TableSet.dense), but no per-table call overhead, which dominates when a call holds few
# symbols spread over many tables (the context coder's early stages). Over it, per-table calls
# are faster (constriction then builds each model once, not once per symbol).
PER_SYMBOL_MAX = 1 << 14


def _layout(tables, sorted_ids):
    """(table sizes, first symbols, one probability row per symbol or None) of symbols in coding
    order. Sizes and first symbols are scalars when every table in the call has the same ones
    (as all tables of one WaLLoC channel do), and the rows are given when, besides, the call is
    small enough to code per symbol."""
    first, last = int(sorted_ids[0]), int(sorted_ids[-1])
    if tables.shape_run[first] != tables.shape_run[last]:
        return tables.sizes[sorted_ids], tables.lo[sorted_ids], None
    size = int(tables.sizes[first])
    probs = None
    if len(sorted_ids) * size <= PER_SYMBOL_MAX:
        rows, dense = tables.dense(size)
        probs = dense[rows[sorted_ids]]
    return size, int(tables.lo[first]), probs


@functools.cache
def _per_symbol_model():
    import constriction
    return constriction.stream.model.Categorical(perfect=False)


class Encoder:
    def __init__(self):
        import constriction
        self._enc = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols, tables, table_id):
        """Encode a 1-D integer array under one table."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        self.encode_indexed(symbols, tables, np.full(len(symbols), table_id, dtype=np.int64))

    def encode_indexed(self, symbols, tables, table_ids):
        """Encode symbols, each under the table of its integer id (a context, a scale bin...).

        Symbols are coded grouped by table (in id order, stable within a group); then the raw
        32-bit values of all escaped symbols, in the same order."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        table_ids = np.asarray(table_ids, dtype=np.int64).ravel()
        if symbols.size == 0:
            return
        idx = symbols - tables.lo[table_ids]
        top = tables.sizes[table_ids] - 1          # the escape entry
        escaped = (idx < 0) | (idx >= top)
        idx = np.where(escaped, top, idx).astype(np.int32)
        order = _table_order(table_ids, tables)
        idx = idx[order]
        sorted_ids = table_ids[order]
        probs = _layout(tables, sorted_ids)[2]
        if probs is not None:
            self._enc.encode(idx, _per_symbol_model(), probs)
        else:
            enc, a = self._enc.encode, 0
            for model, count in zip(*_runs(tables, sorted_ids)):
                enc(idx[a:a + count], model)
                a += count
        esc = escaped[order]
        if esc.any():
            self._raw(symbols[order][esc])

    def _raw(self, values):
        if values.min() < RAW_MIN or values.max() > RAW_MAX:
            raise ValueError("symbol exceeds the 32-bit escape range")
        u = values - RAW_MIN
        halves = np.stack([u >> 16, u & 0xFFFF], axis=1).ravel().astype(np.int32)
        self._enc.encode(halves, _uniform16())

    def finish(self):
        """The compressed stream as little-endian bytes."""
        return self._enc.get_compressed().astype("<u4").tobytes()


class Decoder:
    def __init__(self, data):
        import constriction
        if not len(data):   # the encoder writes at least one word for any symbol it codes
            raise FormatError("empty entropy-coded stream (corrupt file)")
        if len(data) % 4:
            raise FormatError("entropy-coded stream length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._dec = constriction.stream.queue.RangeDecoder(words)

    def decode(self, n, tables, table_id):
        """Decode n symbols coded by Encoder.encode under the same table."""
        return self.decode_indexed(tables, np.full(n, table_id, dtype=np.int64))

    def decode_indexed(self, tables, table_ids):
        """Decode the symbols coded by Encoder.encode_indexed with the same table ids."""
        table_ids = np.asarray(table_ids, dtype=np.int64).ravel()
        n = len(table_ids)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        order = _table_order(table_ids, tables)
        sorted_ids = table_ids[order]
        size, lo, probs = _layout(tables, sorted_ids)
        dec = self._dec.decode
        try:
            if probs is not None:
                idx = dec(_per_symbol_model(), probs)
            else:
                idx = np.concatenate([dec(model, count) for model, count in zip(*_runs(tables, sorted_ids))])
            esc = np.flatnonzero(idx == size - 1)
            vals = idx + lo
            if esc.size:
                halves = np.asarray(dec(_uniform16(), 2 * esc.size), dtype=np.int64)
                vals[esc] = ((halves[0::2] << 16) | halves[1::2]) + RAW_MIN
        except Exception as e:  # constriction reports corrupt streams as ValueError/RuntimeError
            raise FormatError(f"corrupt entropy-coded data ({e})") from None
        out = np.empty(n, dtype=np.int64)
        out[order] = vals
        return out
