"""Peak memory of encoding and decoding a 16384 x 16384 photo-like image (issue 10):
    /usr/bin/time -v python scripts/peak_memory.py encode /tmp/big.lcf
    /usr/bin/time -v python scripts/peak_memory.py decode /tmp/big.lcf
The image tiles a real photo (the bundled example) to full size."""
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import lcodec

mode, path = sys.argv[1], Path(sys.argv[2])
t = time.time()
if mode == "encode":
    tile = np.asarray(Image.open(Path(__file__).parent.parent / "examples" / "seeding.png").convert("RGB"))
    img = np.tile(tile, (16384 // tile.shape[0] + 1, 16384 // tile.shape[1] + 1, 1))[:16384, :16384]
    img = np.ascontiguousarray(img)
    path.write_bytes(lcodec.encode(img, quality=2, device="cpu"))
    print(f"encoded {path.stat().st_size} bytes")
else:
    out = lcodec.decode(path, device="cpu")
    print(f"decoded {out.shape}")
print(f"{mode}: {time.time() - t:.1f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
