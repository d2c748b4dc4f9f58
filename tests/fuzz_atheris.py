"""Coverage-guided fuzzing of the .lcf reader and decoder, by hand (not part of the test suite):

    pip install atheris && python tests/fuzz_atheris.py -max_total_time=600 tests/golden/

Seeds are the golden files; any exception other than an LcodecError is a crash."""
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import lcodec
    from lcodec.errors import LcodecError


def one_input(data):
    try:
        lcodec.decode(data, device="cpu")
    except LcodecError:
        pass


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
