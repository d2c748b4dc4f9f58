"""Device selection: auto = cuda when available."""
from ..errors import LcodecError


def pick_device(name="auto"):
    import torch
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LcodecError("--device cuda requested but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise LcodecError(f"unknown device '{name}' (use auto, cpu or cuda)")
    return torch.device(name)
