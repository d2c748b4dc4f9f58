"""Coverage-guided fuzzing of the .lcf reader and decoder, by hand (not part of the test suite):

    pip install atheris && python tests/fuzz_atheris.py -max_total_time=600 tests/golden/

Seeds are the golden files; any exception other than an LcodecError is a crash. Every lcodec
module a decode can reach is imported inside the instrumentation block (lcodec imports most of
them lazily, which would leave them uninstrumented and the fuzzer blind); only lcodec is
instrumented, not torch."""
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["lcodec"]):
    import lcodec
    from lcodec import api, audio_codec  # noqa: F401
    from lcodec.codec import coder, context, segments, signal_context, tables, tiling  # noqa: F401
    from lcodec.errors import LcodecError
    from lcodec.formats import container, header  # noqa: F401
    from lcodec.models import clc, hyperprior, mgm, vqgan, walloc_audio, walloc_image  # noqa: F401


def one_input(data):
    try:
        lcodec.decode(data, device="cpu")
    except LcodecError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
