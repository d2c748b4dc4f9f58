"""Splitting images into independently coded tiles (bounded memory, local damage)."""


def tile_grid(height, width, size):
    """(y, x, h, w) of every tile, in raster order."""
    return [(y, x, min(size, height - y), min(size, width - x))
            for y in range(0, height, size) for x in range(0, width, size)]
