"""Shipped weights on disk: fp16 state dicts, loaded without pickle."""
import torch


def to_fp16(model):
    """Round a model's learned weights (its parameters) to fp16, which is what ships, and load
    them back: returns the state, and the model then computes exactly what the shipped weights
    will. Buffers keep their precision: they are small, and some are constants that fp16 would
    flush to zero (CompressAI's likelihood bound 1e-9, GDN's pedestal)."""
    params = {k for k, _ in model.named_parameters()}
    half = {k: (v.detach().cpu().half() if k in params else v.detach().cpu()).contiguous()
            for k, v in model.state_dict().items()}
    model.load_state_dict(to_float(half))
    return half


def to_float(state):
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_state(path):
    """fp16 shipped weights, or a training run's checkpoint (its codec's weights), loaded
    without pickle -> float32 state dict."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state.get("model"), dict):   # a run's last.pt: {"model": {"codec.<name>": ...}, ...}
        state = {k[len("codec."):]: v for k, v in state["model"].items() if k.startswith("codec.")}
    return to_float(state)


def load_matching(model, state):
    """Load the tensors of `state` whose names and shapes match the model's (a sibling model's
    weights as a start); returns the names loaded."""
    own = model.state_dict()
    keep = {k: v for k, v in to_float(state).items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(keep, strict=False)
    return set(keep)


def load_installed(name, quality, model):
    """(registry entry, model with the installed weights of (name, quality), frozen tables),
    every file checked against its sha256 first."""
    from ..codec.tables import TableSet
    from .registry import verified_path, weights_entry
    entry = weights_entry(name, quality)
    model.load_state_dict(load_state(verified_path(entry, "weights_file")))
    tables = TableSet.from_bytes(verified_path(entry, "tables_file").read_bytes())
    return entry, model, tables
