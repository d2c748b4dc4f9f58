"""How audio is cut into independently coded tiles, and put back together without clicks.

A signal of n samples (at the model's rate) is cut into segments of `segment` samples; each
segment is coded with `overlap` extra samples of the next one. On decode, the overlap is
cross-faded (sin^2 / cos^2, which sum to 1) from the end of one segment into the start of the
next, so the two segments' different coding errors meet smoothly instead of as a step.
Channels are coded in groups (pairs in order, an odd last channel alone); tile index =
segment * groups + group. Pure numpy: the container validates headers with this module."""
import numpy as np


def channel_groups(channels):
    """Channel index tuples coded together: pairs in order, an odd last channel alone."""
    groups = [(i, i + 1) for i in range(0, channels - 1, 2)]
    if channels % 2:
        groups.append((channels - 1,))
    return groups


def segment_count(n, segment):
    return max(1, -(-n // segment))


def segment_span(k, n, segment, overlap):
    """[start, stop) of the samples segment k codes."""
    return k * segment, min((k + 1) * segment + overlap, n)


def fade_in(length):
    t = (np.arange(length) + 0.5) / length
    return np.sin(0.5 * np.pi * t) ** 2


def assemble(segments, n, segment, overlap):
    """Yield the final signal in order, one piece per decoded segment.

    segments: iterable of (samples x channels) arrays, segment k covering segment_span(k).
    Piece k covers [k * segment, min((k + 1) * segment, n))."""
    tail = None
    for k, x in enumerate(segments):
        start, _ = segment_span(k, n, segment, overlap)
        piece = x[:min(segment, n - start)].copy()
        if tail is not None:
            m = min(len(tail), len(piece))
            w = fade_in(overlap)[:m, None]
            piece[:m] = w * piece[:m] + (1 - w) * tail[:m]
        tail = x[segment:]
        yield piece
