"""walloc-rgb as a codec: tiles of uint8 pixels <-> entropy-coded latent bytes."""
import numpy as np
import torch

from ..codec.context import LatentCoder
from ..errors import FormatError
from .registry import model_arch, model_spec
from .state import load_installed
from .walloc import WaLLoC


def tile_symbols(model, thresholds, pixels, device="cpu"):
    """H x W x 3 uint8 tile -> latent x h x w int symbols: edge-padded to the model's stride,
    then the deterministic symbol path. Table fitting calls this too, so the frozen tables
    see exactly what the encoder codes."""
    return batch_symbols(model, thresholds, pixels[None], device)[0]


def batch_symbols(model, thresholds, tiles, device="cpu"):
    """B x H x W x 3 uint8 tiles of one shape -> B x latent x h x w symbols, each tile's the
    same as alone (the symbol path is elementwise lifting, then a float64 projection)."""
    s = model.stride()
    _, h, w, _ = tiles.shape
    padded = np.pad(tiles, ((0, 0), (0, -h % s), (0, -w % s), (0, 0)), mode="edge")
    x = torch.from_numpy(padded).permute(0, 3, 1, 2).to(device).float() / 255.0 - 0.5
    return model.symbols(x, thresholds).cpu().numpy()


def load_shipped(name, quality, device):
    """(registry entry, WaLLoC in eval mode on device, frozen tables) of an installed model,
    every file checked against its sha256."""
    entry, model, tables = load_installed(name, quality, WaLLoC(**model_arch(name, quality)))
    return entry, model.eval().to(device), tables


def same_shape_runs(arrays, batch):
    """Index lists of at most `batch` arrays of one shape, covering every array once."""
    groups = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    return [g[k:k + batch] for g in groups.values() for k in range(0, len(g), max(1, batch))]


class WallocImageCodec:
    def __init__(self, name, quality, device):
        self.entry, self.model, tables = load_shipped(name, quality, device)
        self.device = device
        self.tile = model_spec(name)["tile"]
        self.thresholds = self.model.thresholds()
        self.coder = LatentCoder(tables)
        self.stride = self.model.stride()

    def latent_shape(self, h, w):
        s = self.stride
        return (self.model.latent, -(-h // s), -(-w // s))

    def symbols(self, pixels):
        """H x W x 3 uint8 -> latent x h x w int symbols (deterministic)."""
        return tile_symbols(self.model, self.thresholds, pixels, self.device)

    def encode_tile(self, pixels):
        return self.coder.encode(self.symbols(pixels))

    def encode_tiles(self, tiles, batch=16):
        """Payloads of many tiles: tiles of one shape go through the transform `batch` at a time."""
        out = [None] * len(tiles)
        for members in same_shape_runs(tiles, batch):
            stack = np.stack([tiles[i] for i in members])
            for i, sym in zip(members, batch_symbols(self.model, self.thresholds, stack, self.device)):
                out[i] = self.coder.encode(sym)
        return out

    def decode_symbols(self, payload, h, w):
        sym = self.coder.decode(payload, self.latent_shape(h, w))
        m = self.model.max_symbol
        if np.abs(sym).max(initial=0) > m:
            raise FormatError("decoded latent symbol out of range (corrupt tile)")
        return sym

    def latents(self, payload, h, w):
        """The companded latent (latent x h/8 x w/8 float): what compressed-domain models consume."""
        return torch.from_numpy(self.decode_symbols(payload, h, w).astype(np.float32))

    def synthesize(self, sym, h, w):
        with torch.no_grad():
            x = self.model.reconstruct(torch.from_numpy(sym)[None].to(self.device).float())
        x = torch.round((x[0] + 0.5) * 255.0).clamp(0, 255).to(torch.uint8)
        return x.permute(1, 2, 0).cpu().numpy()[:h, :w]

    def decode_tile(self, payload, h, w):
        return self.synthesize(self.decode_symbols(payload, h, w), h, w)
