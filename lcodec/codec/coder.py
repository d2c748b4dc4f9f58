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


def _grouping(table_ids):
    """Stable order of symbols by table, and the [start, end) run of each table in it."""
    small = table_ids.size and 0 <= table_ids.min() and table_ids.max() < 1 << 15
    # numpy sorts 16-bit integers by radix (linear time) when asked for a stable sort
    order = np.argsort(table_ids.astype(np.int16) if small else table_ids, kind="stable")
    ids = table_ids[order]
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(ids)]])
    return order, ids[starts], starts, ends


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
        order, ids, starts, ends = _grouping(table_ids)
        idx = idx[order]
        enc, model = self._enc.encode, tables.model
        for t, a, b in zip(ids.tolist(), starts.tolist(), ends.tolist()):
            enc(idx[a:b], model(t))
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
        order, ids, starts, ends = _grouping(table_ids)
        idx = np.empty(n, dtype=np.int64)
        dec, model = self._dec.decode, tables.model
        try:
            for t, a, b in zip(ids.tolist(), starts.tolist(), ends.tolist()):
                idx[a:b] = dec(model(t), b - a)
            sorted_ids = table_ids[order]
            vals = idx + tables.lo[sorted_ids]
            esc = np.flatnonzero(idx == tables.sizes[sorted_ids] - 1)
            if esc.size:
                halves = np.asarray(dec(_uniform16(), 2 * esc.size), dtype=np.int64)
                vals[esc] = ((halves[0::2] << 16) | halves[1::2]) + RAW_MIN
        except Exception as e:  # constriction reports corrupt streams as ValueError/RuntimeError
            raise FormatError(f"corrupt entropy-coded data ({e})") from None
        out = np.empty(n, dtype=np.int64)
        out[order] = vals
        return out
