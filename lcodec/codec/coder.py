"""Entropy coding of integer symbols on constriction's range coder (FIFO: decode order =
encode order). Symbols are coded under frozen integer tables (TableSet) chosen by integer id;
a symbol outside a table's support is coded as the escape entry followed by its raw 32-bit
value, so any int32 round-trips exactly."""
import numpy as np

from ..errors import FormatError

CODER_NAME = "constriction-range"
RAW_MIN, RAW_MAX = -(1 << 31), (1 << 31) - 1


def coder_version():
    from importlib.metadata import version
    return version("constriction")


def _uniform16():
    import constriction
    return constriction.stream.model.Uniform(1 << 16)


class Encoder:
    def __init__(self):
        import constriction
        self._enc = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols, tables, table_id):
        """Encode a 1-D integer array under one table."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        if symbols.size == 0:
            return
        lo, k = int(tables.lo[table_id]), tables.size(table_id)
        idx = symbols - lo
        escaped = (idx < 0) | (idx >= k - 1)
        idx = np.where(escaped, k - 1, idx).astype(np.int32)
        self._enc.encode(idx, tables.model(table_id))
        if escaped.any():  # all escaped values follow the run, as raw 32-bit words
            self._raw(symbols[escaped])

    def _raw(self, values):
        if values.min() < RAW_MIN or values.max() > RAW_MAX:
            raise ValueError("symbol exceeds the 32-bit escape range")
        u = values - RAW_MIN
        halves = np.stack([u >> 16, u & 0xFFFF], axis=1).ravel().astype(np.int32)
        self._enc.encode(halves, _uniform16())

    def encode_indexed(self, symbols, scale_tables, indices):
        """Encode symbols each under the table given by its integer index (e.g. a scale bin)."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        indices = np.asarray(indices, dtype=np.int64).ravel()
        for t in np.unique(indices):
            self.encode(symbols[indices == t], scale_tables, int(t))

    def finish(self):
        """The compressed stream as little-endian bytes."""
        return self._enc.get_compressed().astype("<u4").tobytes()


class Decoder:
    def __init__(self, data):
        import constriction
        if len(data) % 4:
            raise FormatError("entropy-coded stream length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._dec = constriction.stream.queue.RangeDecoder(words)

    def decode(self, n, tables, table_id):
        """Decode n symbols coded by Encoder.encode under the same table."""
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        lo, k = int(tables.lo[table_id]), tables.size(table_id)
        try:
            idx = np.asarray(self._dec.decode(tables.model(table_id), n), dtype=np.int64)
            out = idx + lo
            esc = np.flatnonzero(idx == k - 1)
            if esc.size:
                halves = np.asarray(self._dec.decode(_uniform16(), 2 * esc.size), dtype=np.int64)
                out[esc] = ((halves[0::2] << 16) | halves[1::2]) + RAW_MIN
            return out
        except FormatError:
            raise
        except Exception as e:  # constriction reports corrupt streams as ValueError/RuntimeError
            raise FormatError(f"corrupt entropy-coded data ({e})") from None

    def decode_indexed(self, scale_tables, indices):
        indices = np.asarray(indices, dtype=np.int64).ravel()
        out = np.empty(len(indices), dtype=np.int64)
        for t in np.unique(indices):
            sel = indices == t
            out[sel] = self.decode(int(sel.sum()), scale_tables, int(t))
        return out
