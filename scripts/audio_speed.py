"""Encode and decode speed of every walloc-stereo level on 60 s of dense 44.1 kHz stereo (the
bundled drum loop repeated, as scripts/audio_memory.py writes it), in seconds of audio per
second, after a warm-up:  python scripts/audio_speed.py"""
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

import lcodec
from audio_memory import write_long

with tempfile.TemporaryDirectory() as d:
    write_long(Path(d) / "long.wav", 1.0)
    x, rate = sf.read(str(Path(d) / "long.wav"), always_2d=True)
seconds = len(x) / rate
for q in (1, 2, 3):
    lcodec.encode(x[:rate], rate=rate, quality=q, device="cpu")
    t = time.perf_counter()
    blob = lcodec.encode(x, rate=rate, quality=q, device="cpu")
    enc = time.perf_counter() - t
    t = time.perf_counter()
    lcodec.decode(blob, device="cpu")
    dec = time.perf_counter() - t
    print(f"q{q}: {len(blob) * 8 / seconds / 1000:.1f} kbps, encode {seconds / enc:.0f}x real time, "
          f"decode {seconds / dec:.0f}x ({torch.get_num_threads()} torch threads)")
