"""`lcodec bench`: rate-distortion and speed of learned models and classical anchors."""
import click


@click.command("bench")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", default="report", show_default=True, help="Report folder.")
@click.option("-m", "--model", "models", multiple=True, help="Learned model(s) to include [default: all installed].")
@click.option("--anchors", default=None,
              help="Comma-separated anchors: jpeg,webp,avif for images; opus,mp3,mp3-22k for audio [default: all available].")
@click.option("--device", default="auto", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N files.")
def bench_cmd(folder, output, models, anchors, device, limit):
    """Benchmark every codec on a FOLDER of images or audio: results.json/.csv, summary.md, rd.png.

    The folder's content (or the models named with -m) decides whether it is an image or an
    audio benchmark."""
    from ..errors import LcodecError
    modality = _modality(folder, models)
    if modality == "audio":
        from ..bench import audio_anchors as anchor_mod
        from ..bench.audio_run import run
    else:
        from ..bench import anchors as anchor_mod
        from ..bench.run import run
    names = None
    if anchors is not None:
        names = [a.strip() for a in anchors.split(",") if a.strip()]
        bad = [a for a in names if a not in anchor_mod.QUALITIES]
        if bad:
            raise LcodecError(f"unknown {modality} anchor(s) {', '.join(bad)} (known: {', '.join(anchor_mod.QUALITIES)})")
    run(folder, output, models=models, anchor_names=names, device=device, limit=limit)
    click.echo(f"wrote {output}/results.json, results.csv, summary.md, rd.png")


def _modality(folder, models):
    from pathlib import Path
    from ..errors import LcodecError
    from ..io.audio import is_audio_path
    from ..models.registry import model_spec
    from ..io.images import IMAGE_SUFFIXES
    kinds = {model_spec(m)["modality"] for m in models}
    if len(kinds) > 1:
        raise LcodecError("bench image models and audio models in separate runs")
    if kinds:
        return kinds.pop()
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
        return "image"
    if any(is_audio_path(p) for p in files):
        return "audio"
    raise LcodecError(f"{folder}: no images or audio files found")
