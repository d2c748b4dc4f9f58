"""Entry point of the `lcodec` command. Commands import torch lazily, so --help, info and
models answer at once. Every LcodecError becomes one line on stderr and exit status 1."""
import json
import os
import sys
import time
import warnings
from pathlib import Path

import click

from ..errors import LcodecError
from .bench_cmd import bench_cmd
from .devices import device_name
from .train_cmd import train_cmd

# compressai (the GDN layers, the hyperprior peer) uses torch.jit.script, which torch 2.14
# deprecates: the warning is about their code, not the user's command
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LcodecError as e:
            click.echo(f"lcodec: error: {e}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("lcodec: interrupted", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lcodec")
def cli():
    """lcodec: learned image and audio compression in a versioned container (.lcf)."""


def _input_file(path):
    p = Path(path)
    if p.is_dir():
        raise LcodecError(f"{path}: is a directory, expected a file")
    if not p.exists():
        raise LcodecError(f"{path}: no such file")
    return p


def _output_for(src, output, suffix):
    """The output path (INPUT with `suffix` by default); never the input itself, even with --force."""
    out = Path(output) if output else src.with_suffix(suffix)
    if out.resolve() == src.resolve() or (out.exists() and os.path.samefile(out, src)):
        raise LcodecError(f"{out}: is the input file; give another output")
    return out


def _peak_memory():
    from ..batch import peak_rss_mib
    return f"peak memory {peak_rss_mib():.0f} MiB"


def _run_options(command):
    """The options encode and decode share: where they run, overwriting, folder workers."""
    for option in reversed([
            click.option("--device", default="auto", show_default=True, help="auto|cpu|cuda"),
            click.option("-f", "--force", is_flag=True, help="Overwrite an existing output."),
            click.option("-j", "--jobs", type=click.IntRange(1, 4096), default=None,
                         help="Folder input: worker processes, one core each [default: one per core]."),
            click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                         help="Folder input: local processes, or Ray Data (RAY_ADDRESS, or a local Ray with --jobs "
                              "CPUs)."),
            click.option("--threads", type=click.IntRange(1, 1024), default=None,
                         help="torch threads per process [default: all cores for a file; 1 per worker with "
                              "--jobs, else the cores shared out among the workers].")]):
        command = option(command)
    return command


def _set_threads(threads):
    if threads:
        import torch
        torch.set_num_threads(threads)


def _batch(input, output, mode, jobs, force, **kw):
    """A folder in, a mirrored folder out (resumable); exit status 1 if any file failed."""
    from .. import batch
    if not output:
        raise LcodecError(f"{input} is a folder: give the output folder with -o")
    s = batch.run(input, output, mode, jobs=jobs, force=force, echo=click.echo, **kw)
    if s.failures:
        sys.exit(1)


@cli.command()
@click.argument("input")
@click.option("-o", "--output", default=None, help="Output .lcf file [default: INPUT with .lcf], or folder.")
@click.option("-m", "--model", default=None,
              help="Model name (see `lcodec models`) [default: walloc-rgb for images, walloc-stereo for audio].")
@click.option("-q", "--quality", type=int, default=None, help="Quality level (model default if omitted).")
@_run_options
@click.option("-b", "--batch-size", type=click.IntRange(1, 4096), default=1, show_default=True,
              help="Folder input: images read together; with walloc-rgb their equal-shaped tiles share "
                   "network passes (pays on a GPU; same bytes as one at a time).")
def encode(input, output, model, quality, device, force, jobs, engine, threads, batch_size):
    """Compress an image or audio file (or a folder of them) into .lcf files."""
    from .. import api
    if Path(input).is_dir():
        return _batch(input, output, "encode", jobs, force, model=model, quality=quality,
                      device=device_name(device), engine=engine, batch_size=batch_size, threads=threads)
    _set_threads(threads)
    src = _input_file(input)
    out = _output_for(src, output, ".lcf")
    if out.exists() and not force:
        raise LcodecError(f"{out}: already exists (use --force to overwrite)")
    notes = []
    t = time.time()
    data = api.encode(src, model=model, quality=quality, device=device, notes=notes)
    dt = time.time() - t
    api.write_atomic(out, data, force=force)
    for n in notes:
        click.echo(f"note: {n}", err=True)
    info = api.open(data).info()
    if info["modality"] == "audio":
        what = (f"{info['sample_rate']} Hz, {info['channels']} ch, {info['duration_s']:.2f} s, {len(data)} bytes, "
                f"{info['kbps']:.1f} kbps")
    else:
        what = f"{info['width']}x{info['height']}, {len(data)} bytes, {info['bpp']:.4f} bpp"
    click.echo(f"{src} -> {out}: {what}, {info['model']} q{info['quality']}, {dt:.2f} s, {_peak_memory()}")


@cli.command()
@click.argument("input")
@click.option("-o", "--output", default=None,
              help="Output image (.png, .bmp, .tif, .ppm) or audio (.wav, .flac) [default: INPUT with .png or .wav].")
@_run_options
@click.option("--conceal", is_flag=True,
              help="Fill the indices of damaged tiles (CRC failure) with the model's restorer instead of failing (vqgan).")
def decode(input, output, device, force, jobs, engine, threads, conceal):
    """Decode an .lcf file (or a folder of them) to an image or audio file."""
    from .. import api
    if Path(input).is_dir():
        if conceal:
            raise LcodecError("--conceal decodes one file at a time")
        return _batch(input, output, "decode", jobs, force, device=device_name(device), engine=engine,
                      threads=threads)
    _set_threads(threads)
    src = _input_file(input)
    lcf = api.open(src, tolerate_damage=conceal)
    if lcf.header["modality"] == "audio":
        return _decode_audio(lcf, src, output, device, force)
    out = _output_for(src, output, ".png")
    if out.suffix.lower() not in api.IMAGE_FORMATS:
        raise LcodecError(f"{out}: unsupported output type (use .png, .bmp, .tif or .ppm)")
    if out.exists() and not force:
        raise LcodecError(f"{out}: already exists (use --force to overwrite)")
    t = time.time()
    w, h = api.write_image(lcf, out, device=device, force=force, conceal=conceal)
    dt = time.time() - t
    done = f"{src} -> {out}: {w}x{h}, {dt:.2f} s, {_peak_memory()}"
    if conceal:
        lost = lcf.concealed_tiles
        done += (f", concealed {lcf.concealed} indices of {len(lost)} damaged tile(s) {lost}" if lost
                 else ", no damaged tiles")
    click.echo(done)


def _decode_audio(lcf, src, output, device, force):
    from .. import api
    from ..io.audio import output_format
    out = _output_for(src, output, ".wav")
    output_format(out, lcf.header["subtype"], lcf.header["channels"])  # refuse a bad output before any work
    if out.exists() and not force:
        raise LcodecError(f"{out}: already exists (use --force to overwrite)")
    t = time.time()
    frames = api.write_audio(lcf, out, device=device, force=force)
    h = lcf.header
    click.echo(f"{src} -> {out}: {h['sample_rate']} Hz, {h['channels']} ch, {frames} frames, {time.time() - t:.2f} s, "
               f"{_peak_memory()}")


@cli.command()
@click.argument("input")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(input, as_json):
    """Show the header of an .lcf file (no model is loaded)."""
    from .. import api
    fields = api.open(_input_file(input)).info()
    if as_json:
        click.echo(json.dumps(fields, indent=1))
        return
    width = max(len(k) for k in fields)
    for k, v in fields.items():
        click.echo(f"{k:{width}s} {v}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(as_json):
    """List the installed models, their quality levels and validation figures."""
    from ..models.registry import list_models
    ms = list_models()
    if as_json:
        click.echo(json.dumps(ms, indent=1))
        return
    for m in ms:
        role = ", benchmark peer" if m["benchmark"] else ""
        click.echo(f"{m['name']}  ({m['modality']}{role}, version {m['version']}): {m['description']}")
        for q, lv in m["levels"].items():
            val = lv.get("val") or {}
            if "kbps" in val:
                fig = f"val {val['kbps']:.1f} kbps, {val['snr']:.2f} dB SNR"
            else:
                fig = f"val {val['bpp']:.3f} bpp, {val['psnr']:.2f} dB" if val else "not installed"
            sha = (lv.get("weights_sha256") or "")[:12]
            click.echo(f"  -q {q}  {lv['note']:32s} {fig:28s} {sha}")


cli.add_command(train_cmd)
cli.add_command(bench_cmd)


def main():
    cli()
