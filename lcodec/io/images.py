"""Image I/O: any Pillow-readable image in, H x W x 3 uint8 RGB out (with notes on conversions)."""
import os
import warnings

import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm"}
MAX_PIXELS = 16384 * 16384  # hard ceiling for what lcodec will encode (tiles keep memory bounded)


def read_image(path):
    """Return (H x W x 3 uint8 array, list of notes about conversions made)."""
    from PIL import Image, ImageOps
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, expected an image file")
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    # Pillow's decompression-bomb guard stays on: it refuses above 2x MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
    notes = []
    try:
        with warnings.catch_warnings(), Image.open(path) as im:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if getattr(im, "n_frames", 1) > 1:
                notes.append(f"animated image: encoding the first of {im.n_frames} frames")
            im.seek(0)
            if im.getexif().get(0x0112, 1) != 1:   # orientation tag (exif_transpose always copies)
                im = ImageOps.exif_transpose(im)
            arr = to_rgb(im, notes)
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise InputError(f"{path}: refused, image too large ({e})") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except MemoryError:
        raise InputError(f"{path}: image too large to decode in memory") from None
    except Exception as e:  # Pillow's decoders raise many types on corrupt files
        raise InputError(f"{path}: not a readable image ({e.__class__.__name__}: {e})") from None
    return arr, notes


def to_rgb(im, notes):
    """Convert any Pillow mode to 8-bit RGB, noting what was lost."""
    from PIL import Image
    mode = im.mode
    if mode == "RGB":   # by strips: one full-size copy, not three (a 16384^2 image is 805 MB)
        arr = np.empty((im.height, im.width, 3), np.uint8)
        for y in range(0, im.height, 1024):
            arr[y:y + 1024] = np.asarray(im.crop((0, y, im.width, min(im.height, y + 1024))))
        return arr
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        if mode == "F" and a.size and np.nanmax(a) <= 1.0:
            a = a * 255.0  # float images in [0, 1]
        hi = 65535.0 if mode.startswith("I;16") or np.nanmax(a, initial=0) > 255 else 255.0
        g = np.clip(np.round(a / hi * 255.0), 0, 255).astype(np.uint8)
        notes.append(f"{mode} image reduced to 8 bits per sample and coded as RGB")
        return np.repeat(g[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        notes.append(f"{mode} image: alpha channel dropped (composited on white)")
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"), dtype=np.uint8).copy()
    notes.append(f"{mode} image converted to RGB")
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def check_array(arr):
    """Validate an in-memory image for the library API."""
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError("image arrays must be H x W x 3 uint8")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError("image array is empty")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise InputError(f"image of {arr.shape[1]}x{arr.shape[0]} exceeds the {MAX_PIXELS}-pixel limit")
    return np.ascontiguousarray(arr)
