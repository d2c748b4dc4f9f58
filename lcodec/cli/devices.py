"""Device selection: auto = cuda when available."""
import glob
import sys

from ..errors import LcodecError


def no_gpu_driver():
    """True where CUDA cannot be available because the machine has no GPU driver (Linux: no
    /dev/nvidia* or WSL /dev/dxg; macOS never has CUDA): 'auto' then means the CPU, known
    without importing torch (~2 s)."""
    if sys.platform == "darwin":
        return True
    return sys.platform.startswith("linux") and not (glob.glob("/dev/nvidia*") or glob.glob("/dev/dxg"))


def device_name(name="auto"):
    """pick_device's answer as a string, without importing torch where the answer is the CPU:
    folder jobs only pass the name on to worker processes, which import torch themselves, so
    the main process need not pay for the import before they start."""
    if name == "cpu" or (name in (None, "auto") and no_gpu_driver()):
        return "cpu"
    return str(pick_device(name))


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
