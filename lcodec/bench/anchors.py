"""Classical image anchors through Pillow, run in the same process as the learned codecs."""
import io

import numpy as np

QUALITIES = {
    "jpeg": [5, 10, 20, 30, 50, 70, 85, 95],
    "webp": [0, 5, 10, 25, 50, 75, 90, 100],
    "avif": [5, 15, 30, 45, 60, 75, 90],
}


def available():
    from PIL import features
    return [name for name in QUALITIES if name == "jpeg" or features.check(name)]


def encode(name, pixels, quality):
    from PIL import Image
    buf = io.BytesIO()
    im = Image.fromarray(pixels, "RGB")
    if name == "jpeg":
        im.save(buf, format="JPEG", quality=quality, optimize=True)
    elif name == "webp":
        im.save(buf, format="WEBP", quality=quality, method=6)
    elif name == "avif":
        im.save(buf, format="AVIF", quality=quality, speed=6)
    else:
        raise ValueError(name)
    return buf.getvalue()


def decode(data):
    from PIL import Image
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def webp_mosaic_bytes(symbols):
    """The WaLLoC paper's storage of latents: each channel offset to uint8, channels tiled into
    one grayscale mosaic, lossless WebP (maximum effort). symbols: C x h x w ints in [-127, 127]."""
    from PIL import Image
    c, h, w = symbols.shape
    cols = int(np.ceil(np.sqrt(c)))
    rows = int(np.ceil(c / cols))
    mosaic = np.zeros((rows * h, cols * w), dtype=np.uint8)
    for i in range(c):
        r, q = divmod(i, cols)
        mosaic[r * h:(r + 1) * h, q * w:(q + 1) * w] = (symbols[i] + 128).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(mosaic, "L").save(buf, format="WEBP", lossless=True, quality=100, method=6)
    return len(buf.getvalue())
