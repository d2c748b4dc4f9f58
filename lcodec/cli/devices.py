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
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise LcodecError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise LcodecError(f"no CUDA device {dev.index} (found {torch.cuda.device_count()})")
    return dev
