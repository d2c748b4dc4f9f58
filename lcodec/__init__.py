"""lcodec: learned compression of images and audio into versioned .lcf files.

    import lcodec
    data = lcodec.encode("photo.png", model="walloc-rgb", quality=2)   # -> bytes
    pixels = lcodec.decode(data)                                        # -> H x W x 3 uint8
    f = lcodec.open("photo.lcf"); f.header; f.latents()

Every error raised on bad input or a bad file is an `lcodec.LcodecError`.
Heavy dependencies (torch) load on first use, not on import.
"""
from .errors import FormatError, InputError, LcodecError, ModelError, OutputError, VersionError

__all__ = ["encode", "decode", "open", "list_models", "LcodecError", "FormatError", "InputError",
           "ModelError", "OutputError", "VersionError"]


def encode(src, model="walloc-rgb", quality=None, device="auto"):
    """Compress an image (path or H x W x 3 uint8 array) into .lcf bytes."""
    from . import api
    return api.encode(src, model=model, quality=quality, device=device)


def decode(src, device="auto"):
    """Decode .lcf bytes or a path to an H x W x 3 uint8 array."""
    from . import api
    return api.decode(src, device=device)


def open(src):  # noqa: A001
    """Parse an .lcf file (path or bytes): .header, .info(), .latents(), .decode()."""
    from . import api
    return api.open(src)


def list_models():
    from .models.registry import list_models as _list
    return _list()


def __getattr__(name):
    """`lcodec.learn` loads on first use (it imports torch)."""
    if name == "learn":
        import importlib
        return importlib.import_module(".learn", __name__)
    raise AttributeError(f"module 'lcodec' has no attribute {name!r}")
