"""The input contract that travels with every model: what signal it expects and what it outputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ecgscope.leads import STANDARD_LEADS


@dataclass(frozen=True)
class ModelCfg:
    """A model's input contract and provenance, written into ``model.json`` and ``preprocess.json``.

    Parameters
    ----------
    fs : float
        Sampling rate the model was built for (Hz).
    n_samples : int
        Input length in samples.
    leads : tuple of str
        Lead order of the input channels.
    units : str
        Units of the input before normalisation ("mV").
    normalisation : str
        What the preprocessing does to the signal before the model sees it.
    band_hz : tuple of float or None
        Band-pass filter, if any.
    """

    fs: float = 100.0
    n_samples: int = 1000
    leads: tuple[str, ...] = STANDARD_LEADS
    units: str = "mV"
    normalisation: str = "per-lead mean removed, clipped to +-5 mV"
    band_hz: tuple[float, float] | None = None
    paper: str = ""
    licence: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {**asdict(self), "leads": list(self.leads)}
