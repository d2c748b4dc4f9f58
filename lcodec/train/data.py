"""Training data: real photos held in memory as uint8, served as random flipped crops."""
from pathlib import Path

import numpy as np
import torch

from ..io.images import IMAGE_SUFFIXES


def image_files(folder):
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no images found in {folder}")
    return files


def load_images(folder):
    """All images of a folder as 3 x H x W uint8 tensors."""
    from ..io.images import read_image
    return [torch.from_numpy(read_image(p)[0]).permute(2, 0, 1).contiguous() for p in image_files(folder)]


class CropSampler:
    """Random crops with horizontal/vertical flips, as float32 in [-0.5, 0.5]."""

    def __init__(self, images, seed=0):
        self.images = images
        self.rng = np.random.default_rng(seed)
        self.sources = []    # the image index of each crop of the last batch
        self.boxes = []      # and where in that image it was cut: (y, x, height, width)

    def draw(self, size, crop):
        """The next batch as it is stored: uint8, size x 3 x crop x crop (float when an image
        smaller than the crop had to be enlarged)."""
        out = torch.empty(size, 3, crop, crop, dtype=torch.uint8)
        enlarged = {}
        self.sources, self.boxes = [], []
        for i in range(size):
            self.sources.append(int(self.rng.integers(len(self.images))))
            img = self.images[self.sources[-1]]
            _, h, w = img.shape
            c = min(crop, h, w)
            y, x = self.rng.integers(h - c + 1), self.rng.integers(w - c + 1)
            self.boxes.append((int(y), int(x), c, c))
            t = img[:, y:y + c, x:x + c]
            if self.rng.random() < 0.5:
                t = t.flip(-1)
            if self.rng.random() < 0.5:
                t = t.flip(-2)
            if c < crop:
                enlarged[i] = torch.nn.functional.interpolate(t[None].float(), size=(crop, crop), mode="bilinear")[0]
            else:
                out[i] = t
        if enlarged:
            out = out.float()
            for i, t in enlarged.items():
                out[i] = t
        return out

    def batch(self, size, crop, device="cpu"):
        """The next batch on `device`; the crops travel there as uint8."""
        return to_unit(self.draw(size, crop).to(device))


def to_unit(crops):
    """Pixels in 0..255 (uint8, or float where an image was enlarged) -> float32 in [-0.5, 0.5]."""
    return crops.float() / 255.0 - 0.5


class Prefetcher:
    """Draws the next batch of one (size, crop) in a thread while the current step runs: a GPU
    step would otherwise wait for the CPU to cut its crops. The batches are the sampler's own,
    in the same order."""

    def __init__(self, sampler, size, crop):
        from concurrent.futures import ThreadPoolExecutor
        self.sampler, self.args = sampler, (size, crop)
        self.pool = ThreadPoolExecutor(1)
        self.pending = self.pool.submit(sampler.draw, size, crop)

    def batch(self, device="cpu"):
        crops = self.pending.result()
        self.pending = self.pool.submit(self.sampler.draw, *self.args)
        return to_unit(crops.to(device))


def center_crops(images, size):
    """Deterministic validation crops (the largest centred square up to `size`, multiple of 16)."""
    out = []
    for img in images:
        _, h, w = img.shape
        c = min(size, h, w) // 16 * 16
        y, x = (h - c) // 2, (w - c) // 2
        out.append(img[:, y:y + c, x:x + c].float()[None] / 255.0 - 0.5)
    return out


# ---- audio -----------------------------------------------------------------------------------
def audio_files(folder):
    from ..io.audio import is_audio_path
    files = sorted(p for p in Path(folder).rglob("*") if is_audio_path(p))
    if not files:
        raise SystemExit(f"no audio files found in {folder}")
    return files


def load_signals(folder, rate):
    """Every file as the single-channel signals the codec sees: resampled to the model rate,
    peak-normalized as the encoder normalizes a segment, stereo pairs as mid and side."""
    from ..io import audio
    from ..codec.segments import channel_groups
    from ..models.walloc_audio import normalize, to_mid_side
    out = []
    for p in audio_files(folder):
        info = audio.probe(p)
        up, down = audio.ratio(info.rate, rate)
        reader = audio.Reader(info)
        x = audio.resample_window(reader, up, down, 0, audio.resampled_length(info.frames, up, down))
        reader.close()
        for group in channel_groups(info.channels):
            planes, _ = normalize(to_mid_side(x[:, list(group)]))
            out.extend(torch.from_numpy(p.astype(np.float32)) for p in planes)
    return out


class SignalSampler:
    """Random crops of 1-D signals (zero-padded when shorter) with random gain (-12..0 dB) and
    polarity, as B x 1 x L float32."""

    def __init__(self, signals, seed=0):
        self.signals = signals
        self.rng = np.random.default_rng(seed)

    def batch(self, size, crop):
        out = torch.zeros(size, 1, crop)
        for i in range(size):
            s = self.signals[self.rng.integers(len(self.signals))]
            n = len(s)
            if n > crop:
                a = self.rng.integers(n - crop + 1)
                out[i, 0] = s[a:a + crop]
            else:
                a = self.rng.integers(crop - n + 1)
                out[i, 0, a:a + n] = s
            out[i] *= float(2.0 ** self.rng.uniform(-2, 0)) * (1 if self.rng.random() < 0.5 else -1)
        return out


def signal_crops(signals, size, stride):
    """Deterministic validation: each signal's first `size` samples (a multiple of stride)."""
    out = []
    for s in signals:
        n = min(size, len(s)) // stride * stride
        if n:
            out.append(s[:n][None, None])
    return out
