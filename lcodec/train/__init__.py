"""Training: one loop (loop.py) shared by every model family's trainer."""


def trainer(name):
    """The training module of a model's family: each has build(name, quality), the untrained
    model, and run(name, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch=,
    crop=, lr=, init_from=, lmbda=, ...)."""
    from ..models.registry import model_spec
    family = model_spec(name)["family"]
    if family == "walloc":
        from . import walloc_train as module
    elif family in ("hyperprior", "clc"):
        from . import hyperprior_train as module
    elif family == "mgm":
        from . import mgm_train as module
    elif family == "vqgan":
        from . import vqgan_train as module
    else:
        from ..errors import ModelError
        raise ModelError(f"training for {name} is not available in this version")
    return module
