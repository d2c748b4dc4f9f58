"""lcodec: learned compression of images and audio into versioned .lcf files.

    import lcodec
    data = lcodec.encode("photo.png", quality=2)         # -> bytes (walloc-rgb)
    pixels = lcodec.decode(data)                          # -> H x W x 3 uint8
    data = lcodec.encode("song.flac")                     # -> bytes (walloc-stereo)
    samples = lcodec.decode(data)                         # -> frames x channels float32
    f = lcodec.open("photo.lcf"); f.header; f.latents()

Every error raised on bad input or a bad file is an `lcodec.LcodecError`.
Heavy dependencies (torch) load on first use, not on import.
"""
from .errors import FormatError, InputError, LcodecError, ModelError, OutputError, VersionError

__all__ = ["encode", "decode", "open", "list_models", "LcodecError", "FormatError", "InputError",
           "ModelError", "OutputError", "VersionError"]


def encode(src, model=None, quality=None, device="auto", rate=None):
    """Compress an image (path or H x W x 3 uint8 array) or audio (path, or frames x channels
    array with its sample `rate`) into .lcf bytes; the model defaults by modality."""
    from . import api
    return api.encode(src, model=model, quality=quality, device=device, rate=rate)


def decode(src, device="auto"):
    """Decode .lcf bytes or a path: an image to H x W x 3 uint8, audio to frames x channels
    float32 (at lcodec.open(src).header['sample_rate'])."""
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
