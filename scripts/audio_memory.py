"""Peak memory of encoding and decoding long audio through the CLI path (issue 3: memory stays
bounded regardless of duration). Writes MINUTES of 44.1 kHz stereo (the bundled drum loop,
repeated, under a slow gain ramp) as 16-bit WAV, then encodes and decodes it:
    python scripts/audio_memory.py 2 /tmp/long     # then compare with
    python scripts/audio_memory.py 20 /tmp/long
Each phase runs in its own process, so each peak is its own."""
import subprocess
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


def write_long(path, minutes):
    loop, rate = sf.read(str(ROOT / "examples" / "loop_amen.flac"), dtype="float64", always_2d=True)
    total = int(minutes * 60 * rate)
    with sf.SoundFile(str(path), "w", rate, 2, subtype="PCM_16") as f:
        for a in range(0, total, len(loop)):
            n = min(len(loop), total - a)
            f.write(loop[:n] * (0.3 + 0.7 * a / total))


def main():
    minutes, folder = float(sys.argv[1]), Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    wav, lcf, back = folder / "long.wav", folder / "long.lcf", folder / "back.wav"
    for p in (lcf, back):
        p.unlink(missing_ok=True)
    write_long(wav, minutes)
    for args in (["encode", str(wav), "-o", str(lcf)], ["decode", str(lcf), "-o", str(back)]):
        probe = ("import resource, sys, time; from lcodec.cli.main import cli; t = time.time()\n"
                 "try:\n    cli(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
                 "print(f'{sys.argv[1]}: {time.time() - t:.1f} s, peak RSS '"
                 "f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB')")
        subprocess.run([sys.executable, "-c", probe, *args], check=True)
    print(f"{minutes} min: wav {wav.stat().st_size / 2**20:.0f} MiB, lcf {lcf.stat().st_size / 2**20:.1f} MiB, "
          f"decoded frames {sf.info(str(back)).frames} of {sf.info(str(wav)).frames}")


if __name__ == "__main__":
    main()
