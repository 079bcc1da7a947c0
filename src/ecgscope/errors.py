"""Error and warning types raised by ecgscope.

Every error names the record, lead or file at fault and says what to do about it; the CLI prints the
message without a traceback and exits non-zero.
"""

from __future__ import annotations


class EcgscopeError(Exception):
    """Base class of every error ecgscope raises on purpose."""


class InvalidSignalError(EcgscopeError, ValueError):
    """A signal array has the wrong shape, dtype, sampling rate or non-finite values."""


class LeadMismatchError(EcgscopeError, ValueError):
    """Lead names are unknown, duplicated, or not the set an operation needs."""


class InvalidRecord(EcgscopeError, ValueError):
    """A file could not be turned into a valid ECG record; the message names the file and the reason."""

    def __init__(self, source: str, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class UnknownFormatError(EcgscopeError, ValueError):
    """A path is not in any ECG format ecgscope reads."""


class UnknownPresetError(EcgscopeError, KeyError):
    """A simulator preset name is not one of the known presets."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotFittedError(EcgscopeError, ValueError, AttributeError):
    """A model or estimator was used before it was fitted."""


class SignalQualityWarning(UserWarning):
    """A record is usable but of doubtful quality (flat lead, heavy noise, clipping)."""


class ContractError(EcgscopeError, ValueError):
    """Input does not fit a model's input contract (units, leads, rate or length) and cannot be made to."""
