"""`lcodec bench`: rate-distortion and speed of learned models and classical anchors."""
import click


@click.command("bench")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", default="report", show_default=True, help="Report folder.")
@click.option("-m", "--model", "models", multiple=True, help="Learned model(s) to include [default: all installed].")
@click.option("--anchors", default=None, help="Comma-separated anchors (jpeg,webp,avif) [default: all available].")
@click.option("--device", default="auto", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N files.")
def bench_cmd(folder, output, models, anchors, device, limit):
    """Benchmark every codec on a FOLDER of images: results.json/.csv, summary.md, rd.png."""
    from ..bench import anchors as anchor_mod
    from ..bench.run import run
    from ..errors import LcodecError
    names = None
    if anchors is not None:
        names = [a.strip() for a in anchors.split(",") if a.strip()]
        bad = [a for a in names if a not in anchor_mod.QUALITIES]
        if bad:
            raise LcodecError(f"unknown anchor(s) {', '.join(bad)} (known: {', '.join(anchor_mod.QUALITIES)})")
    run(folder, output, models=models, anchor_names=names, device=device, limit=limit)
    click.echo(f"wrote {output}/results.json, results.csv, summary.md, rd.png")
