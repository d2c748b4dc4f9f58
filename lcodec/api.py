"""The public library API: encode, decode, open (and the CLI is a thin layer over these)."""
import builtins
import contextlib
import os
from pathlib import Path

import numpy as np

from .errors import FormatError, InputError, LcodecError, ModelError
from .formats import container
from .models import registry

DEFAULT_QUALITY = {"walloc-rgb": 2, "walloc-stereo": 2}
DEFAULT_MODEL = {"image": "walloc-rgb", "audio": "walloc-stereo"}
CONCEALING = ("vqgan",)   # models whose decoder can fill lost tiles (decode --conceal)
_codecs = {}


def _device(device):
    from .cli.devices import pick_device
    return pick_device(device)


def resolve_quality(model, quality):
    """The requested quality, or the model's default; checked against the registry."""
    if quality is None:
        quality = DEFAULT_QUALITY.get(model, min(registry.model_spec(model)["qualities"]))
    registry.quality_spec(model, quality)
    return quality


def get_codec(name, quality, device="cpu"):
    """A loaded codec (cached per model, quality and device)."""
    spec = registry.model_spec(name)
    dev = _device(device)
    key = (name, quality, str(dev))
    if key not in _codecs:
        if spec["family"] == "walloc" and spec["modality"] == "image":
            from .models.walloc_image import WallocImageCodec
            _codecs[key] = WallocImageCodec(name, quality, dev)
        elif spec["family"] == "walloc" and spec["modality"] == "audio":
            from .models.walloc_audio import WallocAudioCodec
            _codecs[key] = WallocAudioCodec(name, quality, dev)
        elif spec["family"] == "mgm":
            from .models.mgm import MgmCodec
            _codecs[key] = MgmCodec.load(name, quality, dev)
        elif spec["family"] == "clc":
            from .models.clc import ClcCodec
            _codecs[key] = ClcCodec.load(name, quality, dev)
        elif spec["family"] == "vqgan":
            from .models.vqgan import VqganCodec
            _codecs[key] = VqganCodec.load(name, quality, dev)
        elif spec["family"] == "hyperprior":
            from .models.hyperprior import HyperpriorCodec
            _codecs[key] = HyperpriorCodec.load(name, quality, dev)
        else:
            raise ModelError(f"model '{name}' has no codec in this version")
    return _codecs[key]


def _read_bytes(src):
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src)
    path = os.fspath(src)
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, expected an .lcf file")
    try:
        with builtins.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None


def input_modality(src, rate=None):
    """'image' or 'audio': an array with a sample rate is audio; a path by its extension, or
    else by whether soundfile can read it."""
    from .io.audio import is_audio_path
    from .io.images import IMAGE_SUFFIXES
    if isinstance(src, np.ndarray):
        return "audio" if rate is not None else "image"
    path = Path(os.fspath(src))
    if is_audio_path(path):
        return "audio"
    if path.suffix.lower() in IMAGE_SUFFIXES or not path.is_file():
        return "image"
    import soundfile as sf
    try:
        sf.info(str(path))
        return "audio"
    except Exception:  # not audio: the image reader gives the error, if any
        return "image"


def encode(src, model=None, quality=None, device="auto", notes=None, rate=None):
    """Compress an image (path, or H x W x 3 uint8 array) or audio (path, or frames x channels
    array with `rate`) to .lcf bytes. Without a model, the input's modality picks one."""
    modality = input_modality(src, rate)
    model = model or DEFAULT_MODEL[modality]
    spec = registry.model_spec(model)
    if spec["modality"] != modality:
        raise InputError(f"{model} is an {spec['modality']} model, but the input is {modality}")
    quality = resolve_quality(model, quality)
    if modality == "audio":
        return _encode_audio(src, model, quality, device, rate)
    pixels, conv = _read_pixels(src)
    if notes is not None:
        notes.extend(conv)
    codec = get_codec(model, quality, device)
    return _image_file(pixels, conv, model, quality, codec, _image_payloads(codec, [pixels])[0])


def encode_images(sources, model, quality=None, device="auto", batch=16):
    """Many images (paths or arrays) with one image model -> a list with, per source, its .lcf
    bytes or the LcodecError it failed with. The tiles of all the images go through the
    network together, `batch` of one shape at a time (GPU batching for folder jobs); every
    file has the bytes that encode() gives it alone."""
    spec = registry.model_spec(model)
    if spec["modality"] != "image":
        raise InputError(f"{model} is an {spec['modality']} model: encode_images takes images")
    quality = resolve_quality(model, quality)
    codec = get_codec(model, quality, device)
    read = []
    for src in sources:
        try:
            if not isinstance(src, np.ndarray) and input_modality(src) != "image":
                raise InputError(f"{src}: {model} is an image model, but the input is audio")
            read.append(_read_pixels(src))
        except LcodecError as e:
            read.append(e)
    good = [r for r in read if not isinstance(r, LcodecError)]
    payloads = iter(_image_payloads(codec, [pixels for pixels, _ in good], batch))
    return [r if isinstance(r, LcodecError) else _image_file(*r, model, quality, codec, next(payloads))
            for r in read]


def _read_pixels(src):
    """(H x W x 3 uint8 pixels, notes on conversions) of an image path or array, within limits."""
    from .io.images import check_array, read_image
    if isinstance(src, np.ndarray):
        pixels, conv = check_array(src), []
    else:
        pixels, conv = read_image(src)
        pixels = check_array(pixels)
    if max(pixels.shape[:2]) > container.MAX_SIDE:
        raise InputError(f"image of {pixels.shape[1]}x{pixels.shape[0]}: sides are limited to {container.MAX_SIDE} px")
    return pixels, conv


def _image_payloads(codec, images, batch=16):
    """Per image, its tile payloads in raster order. A codec with encode_tiles gets the tiles of
    all the images in one call, so tiles of one shape share network passes."""
    from .codec.tiling import tile_grid
    if hasattr(codec, "encode_image"):   # whole-image codecs (vqgan) still emit one payload per tile
        return [codec.encode_image(p) for p in images]
    grids = [tile_grid(*p.shape[:2], codec.tile) for p in images]
    tiles = [p[y:y + th, x:x + tw] for p, grid in zip(images, grids) for y, x, th, tw in grid]
    coded = codec.encode_tiles(tiles, batch) if hasattr(codec, "encode_tiles") else \
        [codec.encode_tile(t) for t in tiles]
    out, start = [], 0
    for grid in grids:
        out.append(coded[start:start + len(grid)])
        start += len(grid)
    return out


def _image_file(pixels, conv, model, quality, codec, payloads):
    from .codec.coder import CODER_NAME, coder_version
    h, w, _ = pixels.shape
    e = codec.entry
    header = {"modality": "image", "width": w, "height": h, "channels": 3, "dtype": "uint8",
              "model": model, "model_version": e["version"], "quality": quality,
              "weights_sha256": e["weights_sha256"], "tables_sha256": e["tables_sha256"],
              "coder": CODER_NAME, "coder_version": coder_version(),
              "tile_size": codec.tile, "tiles": len(payloads)}
    if "dictionary_sha256" in e:   # CLC: the reference dictionary the ids in the tiles point into
        header["dictionary_sha256"] = e["dictionary_sha256"]
    return container.write(header, payloads, {"notes": conv} if conv else None)


def _encode_audio(src, model, quality, device, rate):
    from . import audio_codec
    from .io import audio
    if isinstance(src, np.ndarray):
        x = audio_codec.check_array(src, rate)
        info = audio.AudioInfo("<array>", int(rate), x.shape[1], x.shape[0], audio_codec.array_subtype(src))
    else:
        if rate is not None:
            raise InputError("rate= is for arrays: a file's own sample rate is used")
        info = audio.probe(src)
    codec = get_codec(model, quality, device)
    reader = audio.array_reader(x) if isinstance(src, np.ndarray) else audio.Reader(info)
    try:
        header, payloads = audio_codec.encode(reader, info, codec, model, quality)
    finally:
        if hasattr(reader, "close"):
            reader.close()
    return container.write(header, payloads)


class LcfFile:
    """A parsed .lcf file: header fields, sizes, and access to its latents and pixels."""

    def __init__(self, data, tolerate_damage=False):
        self.container = container.read(data, tolerate_damage)
        self.header = self.container.header
        self.concealed, self.concealed_tiles = 0, []   # what the last decode(conceal=True) filled

    def info(self):
        h = self.header
        out = {"format_version": f"{self.container.major}.{self.container.minor}",
               "modality": h["modality"], "model": h["model"], "model_version": h["model_version"],
               "quality": h["quality"], "bytes": self.container.size,
               "header_bytes": self.container.header_bytes, "tiles": h["tiles"],
               "coder": f'{h["coder"]} {h["coder_version"]}',
               "weights_sha256": h["weights_sha256"], "tables_sha256": h["tables_sha256"]}
        if "dictionary_sha256" in h:
            out["dictionary_sha256"] = h["dictionary_sha256"]
        if h["modality"] == "image":
            out.update(width=h["width"], height=h["height"], channels=h["channels"],
                       bpp=round(self.container.size * 8 / (h["width"] * h["height"]), 5))
        else:
            seconds = h["frames"] / h["sample_rate"]
            out.update(sample_rate=h["sample_rate"], channels=h["channels"], frames=h["frames"],
                       duration_s=round(seconds, 4), sample_type=h["subtype"],
                       kbps=round(self.container.size * 8 / seconds / 1000, 3))
        if self.container.meta:
            out["meta"] = self.container.meta
        return out

    def codec(self, device="auto"):
        """The installed codec this file was made with, or a clear error naming what is missing."""
        h = self.header
        try:
            spec = registry.model_spec(h["model"])
            registry.quality_spec(h["model"], h["quality"])
            entry = registry.weights_entry(h["model"], h["quality"])
        except ModelError as e:
            raise ModelError(f"file needs {h['model']} q{h['quality']} v{h['model_version']}: {e}") from None
        if entry.get("dictionary_sha256") != h.get("dictionary_sha256") and \
                (entry["version"], entry["weights_sha256"]) == (h["model_version"], h["weights_sha256"]):
            raise ModelError(f"file needs the reference dictionary {str(h.get('dictionary_sha256'))[:12]}, but "
                             f"{h['model']} q{h['quality']} v{entry['version']} has "
                             f"{str(entry.get('dictionary_sha256'))[:12]} installed")
        if (entry["version"], entry["weights_sha256"], entry["tables_sha256"]) != \
                (h["model_version"], h["weights_sha256"], h["tables_sha256"]):
            raise ModelError(f"file was made with {h['model']} q{h['quality']} version {h['model_version']} "
                             f"(weights {h['weights_sha256'][:12]}), but version {entry['version']} "
                             f"(weights {entry['weights_sha256'][:12]}) is installed")
        if spec["modality"] != h["modality"]:
            raise FormatError("header modality does not match its model")
        from .codec.coder import CODER_NAME, coder_version
        if h["coder"] != CODER_NAME:
            raise FormatError(f"file was entropy-coded with '{h['coder']}'; this lcodec decodes {CODER_NAME}")
        if h["coder_version"].split(".")[:2] != coder_version().split(".")[:2]:
            raise FormatError(f"file was coded with constriction {h['coder_version']}; installed is "
                              f"{coder_version()} (its probability quantization may differ)")
        return get_codec(h["model"], h["quality"], device)

    def _tiles(self, device):
        from .codec.tiling import tile_grid
        codec = self.codec(device)
        if self.header["modality"] != "image":
            raise LcodecError("this is an audio file: use decode_chunks() or latents()")
        if codec.tile != self.header["tile_size"]:
            raise FormatError("header tile size does not match the model")
        grid = tile_grid(self.header["height"], self.header["width"], codec.tile)
        if len(grid) != self.header["tiles"]:
            raise FormatError(f"header says {self.header['tiles']} tiles, its image size makes {len(grid)}")
        return codec, grid

    def latents(self, device="cpu", tile=None):
        """Dequantized latents, without running the synthesis network. Images: C x h x w of the
        whole image (its tiles' latents side by side), or of one tile with `tile=i`. Audio:
        (k * C) x t for one segment of one channel group, `tile` (default 0) in the file's
        order (k = 2 for a pair: its mid latents, then its side latents; k = 1 for a lone
        channel); t = ceil(samples / 256)."""
        if self.header["modality"] == "audio":
            return self._audio_latents(device, 0 if tile is None else tile)
        codec, grid = self._tiles(device)
        if tile is None:
            return self._image_latents(codec, grid)
        if not 0 <= tile < len(grid):
            raise LcodecError(f"tile {tile} out of range (file has {len(grid)})")
        _, _, th, tw = grid[tile]
        return codec.latents(self._tile(tile), th, tw).to(codec.device)

    def _image_latents(self, codec, grid):
        """Every tile's latents placed where its pixels are (tiles are multiples of the stride, so
        the row heights and column widths of the latent grid add up)."""
        zs = {(y, x): codec.latents(self._tile(i), th, tw) for i, (y, x, th, tw) in enumerate(grid)}
        if len(zs) == 1:
            return zs[(0, 0)].to(codec.device)
        rows = sorted({y for y, _ in zs})
        cols = sorted({x for _, x in zs})
        top = dict(zip(rows, np.cumsum([0] + [zs[(y, 0)].shape[1] for y in rows]).tolist()))
        left = dict(zip(cols, np.cumsum([0] + [zs[(0, x)].shape[2] for x in cols]).tolist()))
        last = zs[(rows[-1], cols[-1])]
        out = last.new_empty(last.shape[0], top[rows[-1]] + last.shape[1], left[cols[-1]] + last.shape[2])
        for (y, x), z in zs.items():
            out[:, top[y]:top[y] + z.shape[1], left[x]:left[x] + z.shape[2]] = z
        return out.to(codec.device)

    def _tile(self, i):
        if i not in self.container.tiles:
            raise FormatError(f"tile {i} is damaged or missing")
        return self.container.tiles[i]

    def _audio_latents(self, device, tile):
        from .audio_codec import check_layout
        from .codec import segments as seg
        from .io import audio
        h, codec = self.header, self.codec(device)
        check_layout(h, codec)
        if not 0 <= tile < h["tiles"]:
            raise LcodecError(f"tile {tile} out of range (file has {h['tiles']})")
        groups = seg.channel_groups(h["channels"])
        k, g = divmod(tile, len(groups))
        up, down = audio.ratio(h["sample_rate"], h["model_rate"])
        n = audio.resampled_length(h["frames"], up, down)
        a, b = seg.segment_span(k, n, h["segment"], h["overlap"])
        z = codec.latents(self._tile(tile), b - a, len(groups[g]))
        return z.reshape(-1, z.shape[-1]).to(codec.device)

    def decode_chunks(self, device="auto"):
        """Audio: the decoded signal at the file's sample rate, as successive frames x channels
        float32 chunks (bounded memory for any duration)."""
        from . import audio_codec
        if self.header["modality"] != "audio":
            raise LcodecError("this is an image file: use decode()")
        return audio_codec.decode_chunks(self.header, self._tile, self.codec(device))

    def decode(self, device="auto", conceal=False):
        """Image: H x W x 3 uint8. Audio: frames x channels float32 at header['sample_rate'].
        conceal: fill the indices of damaged tiles (open with tolerate_damage) with a model's
        restorer instead of failing; self.concealed (indices) and self.concealed_tiles then say
        what was filled."""
        if conceal and self.container.damaged and self.header["model"] not in CONCEALING:
            raise LcodecError(f"{self.header['model']} cannot conceal damaged tiles "
                              f"({', '.join(CONCEALING)} can); tile {self.container.damaged[0]} is damaged")
        if self.header["modality"] == "audio":
            from .audio_codec import MAX_ARRAY_SAMPLES
            if self.header["frames"] * self.header["channels"] > MAX_ARRAY_SAMPLES:
                raise LcodecError(f"{self.header['frames']} frames x {self.header['channels']} channels is too "
                                  "much to decode into memory: use decode_chunks() or write_audio()")
            out = np.empty((self.header["frames"], self.header["channels"]), np.float32)
            at = 0
            for chunk in self.decode_chunks(device):   # filled in place: no second copy
                out[at:at + len(chunk)] = chunk
                at += len(chunk)
            if at != len(out):
                raise FormatError(f"decoded {at} of {len(out)} frames (corrupt file)")
            return out
        codec, grid = self._tiles(device)
        if hasattr(codec, "decode_image"):   # whole-image decoding (vqgan)
            pixels, self.concealed, self.concealed_tiles = codec.decode_image(
                self.container.tiles, self.header["height"], self.header["width"], conceal)
            return pixels
        out = np.empty((self.header["height"], self.header["width"], 3), dtype=np.uint8)
        for i, (y, x, th, tw) in enumerate(grid):
            out[y:y + th, x:x + tw] = codec.decode_tile(self._tile(i), th, tw)
        return out


def open(src, tolerate_damage=False):  # noqa: A001 - the documented library name
    """Parse an .lcf file (path or bytes); raises FormatError on any defect, except (with
    tolerate_damage) tiles whose CRC fails: those are listed in .container.damaged."""
    return LcfFile(_read_bytes(src), tolerate_damage)


def decode(src, device="auto"):
    """Decode an .lcf file (path or bytes): an image to an H x W x 3 uint8 array, audio to a
    frames x channels float32 array (its rate: open(src).header['sample_rate'])."""
    return open(src).decode(device)


def list_models():
    return registry.list_models()


def write_atomic(path, data, force=False):
    """Write bytes to path via a temporary file and a rename: never a partial or clobbered file."""
    with atomic_path(path, force) as tmp:
        with builtins.open(tmp, "wb") as f:
            f.write(data)


@contextlib.contextmanager
def atomic_path(path, force=False):
    """A temporary path in the folder of `path`; what the block writes there appears at `path`
    only if the block completes (fsync, then rename). Without force, the file is published with
    a hard link, which fails if the path appeared meanwhile (no check-then-replace race)."""
    import tempfile
    from .errors import OutputError
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    if path.exists() and not force:
        raise OutputError(f"{path}: already exists (use --force to overwrite)")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".lcodec-", suffix=".tmp", dir=path.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600: give the output the usual mode
        yield tmp
        with builtins.open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputError(f"{path}: already exists (use --force to overwrite)") from None
            except OSError:  # a filesystem without hard links
                if path.exists():
                    raise OutputError(f"{path}: already exists (use --force to overwrite)") from None
                os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


IMAGE_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM"}


def write_image(lcf, path, device="auto", force=False, conceal=False):
    """Decode an image LcfFile into an image file (format by extension), atomically; returns
    (width, height). The decoded array is dropped once Pillow has its copy, and the file goes
    straight to disk, so a 16384^2 image never has more than two copies in memory."""
    from PIL import Image
    img = Image.fromarray(lcf.decode(device=device, conceal=conceal), "RGB")
    with atomic_path(path, force) as tmp:
        img.save(tmp, format=IMAGE_FORMATS[Path(path).suffix.lower()])
    return img.size


def write_audio(lcf, path, device="auto", force=False):
    """Decode an audio LcfFile into a WAV or FLAC file (by extension) with the original rate,
    channel count, length and (where the format allows) sample type; streamed, atomic."""
    import soundfile as sf
    from .errors import OutputError
    from .io.audio import output_format
    h = lcf.header
    fmt, subtype = output_format(path, h["subtype"], h["channels"])
    chunks = lcf.decode_chunks(device)
    with atomic_path(path, force) as tmp:
        try:  # libsndfile writes the file itself, so it reports a full disk as an error
            with sf.SoundFile(tmp, "w", samplerate=h["sample_rate"], channels=h["channels"], format=fmt,
                              subtype=subtype) as out:
                for chunk in chunks:
                    out.write(chunk)
        except (sf.LibsndfileError, RuntimeError, AssertionError) as e:
            raise OutputError(f"{path}: cannot write audio ({str(e).strip() or type(e).__name__})") from None
    return h["frames"]
