import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "seeding.png"
GOLDEN = Path(__file__).resolve().parent / "golden"

os.environ.setdefault("OMP_NUM_THREADS", "2")


@contextlib.contextmanager
def torch_threads(n):
    """torch's intra-op thread count set to n inside the block, restored after."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def photo():
    """A real photo (the bundled example), H x W x 3 uint8."""
    from PIL import Image
    return np.asarray(Image.open(EXAMPLE).convert("RGB"), dtype=np.uint8)


@pytest.fixture(scope="session")
def crop(photo):
    """A small real crop with an odd size (exercises padding)."""
    return np.ascontiguousarray(photo[100:197, 200:331])


def save_crops(photo, folder, height, width, count=2):
    """A tiny training set: `count` crops of the example photo, 100 px apart, as PNGs in folder."""
    from PIL import Image
    for i in range(count):
        Image.fromarray(photo[i * 100:i * 100 + height, :width]).save(folder / f"img{i}.png")
