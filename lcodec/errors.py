"""The one exception family of lcodec: every error raised on bad input or a bad file is an LcodecError."""


class LcodecError(Exception):
    """Base class of every error lcodec raises on bad input, a bad file or a missing model."""


class InputError(LcodecError):
    """The input to encode cannot be read or is not a supported image or audio signal."""


class FormatError(LcodecError):
    """An .lcf file is damaged, truncated, or not an .lcf file at all."""


class VersionError(FormatError):
    """An .lcf file was written by a format major version this lcodec cannot read."""


class ModelError(LcodecError):
    """A model, quality level or weights version that is not installed (or not valid)."""


class OutputError(LcodecError):
    """The output cannot be written (exists without --force, unwritable directory, disk full)."""
