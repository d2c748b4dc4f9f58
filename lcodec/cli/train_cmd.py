"""`lcodec train MODEL`: the one training entry point (heavy imports stay inside)."""
import click


@click.command("train")
@click.argument("model")
@click.option("-q", "--quality", type=int, required=True, help="Quality level to train.")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Folder of training images or audio.")
@click.option("--val", "val_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Held-out folder for periodic validation.")
@click.option("--minutes", type=float, default=10.0, show_default=True, help="Wall-clock budget.")
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/last.pt.")
@click.option("--device", default="auto", show_default=True, help="auto|cpu|cuda")
@click.option("--run-dir", default=None, help="Checkpoints and logs [default: runs/MODEL-qN].")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--crop", type=int, default=None,
              help="Crop side (images, default 128) or length in samples (audio, default 16384); larger late in the run.")
@click.option("--lr", type=float, default=None, help="Peak learning rate [default: 5e-4 WaLLoC, 3e-4 others].")
@click.option("--no-pca", is_flag=True, help="Random init instead of the PCA initialisation.")
@click.option("--init", "init_shipped", is_flag=True, help="Fine-tune from the installed weights of MODEL -q N.")
@click.option("--init-from", "init_from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from these weights where names and shapes match (a sibling quality's or a base codec's .pt).")
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores).")
@click.option("--lmbda", type=float, default=None,
              help="Rate weight (bits per sample or pixel) instead of the quality's own (experiments).")
@click.option("--step-scale", type=float, default=1.0, show_default=True,
              help="Multiply the quantization step after initialisation (with --init: a lower rate).")
@click.option("--freeze-encoder", is_flag=True,
              help="Train the decoder only (the latents stay as they are; mgm: the coarse and fine "
                   "indices stay, the refine stage and the synthesis train).")
@click.option("--teacher", type=int, default=None,
              help="WaLLoC images: distil from this installed quality of the same model (its decoded image as a second target).")
@click.option("--fixed-crop", is_flag=True, help="WaLLoC: keep the first crop size to the end (no larger late crops).")
@click.option("--fixed-step", is_flag=True, help="Rate-aware WaLLoC: do not learn the quantization step.")
@click.option("--constant-lr", is_flag=True, help="WaLLoC: the peak learning rate throughout (no warm-up, no cosine).")
@click.option("--prior-weight", type=float, default=0.0, show_default=True,
              help="mgm: sample training codes from the mixture posterior, log(mixture weight) x this added to the logits.")
@click.option("--same-photo-refs", is_flag=True,
              help="clc: train with references cut from each crop's own photo (outside the crop) "
                   "instead of the dictionary's; validation and the codec keep the dictionary.")
@click.option("--stage", type=click.Choice(["autoencoder", "codebook", "restorer"]), default=None,
              help="vqgan: what to train [default: codebook when --init-from has a larger codebook, else autoencoder].")
@click.option("--export", "export_version", type=int, default=None,
              help="After training, export fp16 weights + frozen tables as this model version.")
def train_cmd(model, quality, data_dir, val_dir, minutes, resume, device, run_dir, batch, crop, lr,
              no_pca, init_shipped, init_from, threads, lmbda, step_scale, freeze_encoder, teacher, fixed_crop,
              fixed_step, constant_lr, prior_weight, same_photo_refs, stage, export_version):
    """Train MODEL at quality -q on a folder of data, for --minutes of wall time."""
    import sys
    import torch
    from ..models.registry import model_spec, quality_spec
    from ..train import dist
    if threads:
        torch.set_num_threads(threads)
    spec = model_spec(model)
    quality_spec(model, quality)
    run_dir = run_dir or f"runs/{model}-q{quality}"
    from ..errors import InputError
    if dist.enabled() and resume and minutes == 0:
        raise InputError("export-only calls (--resume --minutes 0) run without torchrun")
    from ..train import trainer
    module = trainer(model)
    if spec["family"] == "walloc":
        extra = {"pca": not no_pca, "step_scale": step_scale, "freeze_encoder": freeze_encoder, "teacher": teacher,
                 "crop_schedule": not fixed_crop, "learn_step": not fixed_step, "lr_schedule": not constant_lr}
    elif no_pca or step_scale != 1.0 or teacher or fixed_crop or fixed_step or constant_lr:
        raise InputError("--no-pca, --step-scale, --teacher, --fixed-crop, --fixed-step and "
                         "--constant-lr are WaLLoC options")
    elif freeze_encoder and spec["family"] != "mgm":
        raise InputError("--freeze-encoder is a WaLLoC and mgm option")
    else:
        extra = {}
    if spec["family"] == "mgm":
        extra.update(prior_weight=prior_weight, freeze_encoder=freeze_encoder)
    elif prior_weight:
        raise InputError("--prior-weight is an mgm option")
    if spec["family"] == "clc":
        extra["same_photo_refs"] = same_photo_refs
    elif same_photo_refs:
        raise InputError("--same-photo-refs is a clc option")
    if spec["family"] == "vqgan":
        extra["stage"] = stage
    elif stage:
        raise InputError("--stage is a vqgan option")
    if init_from and (init_shipped or spec["family"] == "walloc"):
        raise InputError("--init-from is for mgm, the hyperpriors and clc, without --init")
    from pathlib import Path
    dev = dist.init(device)   # joins the torchrun group when there is one
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    if dist.is_main():
        launcher = f"torchrun --nproc_per_node {dist.world()} -m lcodec.cli" if dist.enabled() else "lcodec"
        with open(Path(run_dir) / "commands.txt", "a") as f:  # the ledger records every invocation
            f.write(" ".join([launcher] + sys.argv[1:]) + "\n")
    init = init_from
    if init_shipped:
        from ..models import registry
        init = registry.verified_path(registry.weights_entry(model, quality), "weights_file")
    record_threads = torch.get_num_threads()
    ckpt = Path(run_dir) / "last.pt"
    if resume and minutes == 0 and ckpt.exists():  # an export-only call: record the training's threads
        record_threads = torch.load(ckpt, map_location="cpu", weights_only=True).get("threads", record_threads)
    rec, state = module.run(model, quality, data_dir, val_dir, minutes, resume, dev, run_dir, batch=batch,
                            crop=crop, init_from=init, lmbda=lmbda, seed=dist.rank(), **({"lr": lr} if lr else {}),
                            **extra)
    if export_version is not None and dist.is_main():   # frozen tables: fitted once, on rank 0
        from ..train import export
        export.export_run(model, quality, run_dir, data_dir, val_dir, export_version,
                          commands=(Path(run_dir) / "commands.txt").read_text().splitlines(),
                          device=f"{dev}, {record_threads} torch threads"
                                 + (f", {dist.world()} torchrun ranks" if dist.enabled() else ""),
                          steps=state.step, minutes=state.elapsed / 60, batch=batch,
                          crop=crop or spec.get("train_crop", 128))
    dist.finish()
