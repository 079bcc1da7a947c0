"""What protected health information a store may hold, and the keyed pseudonyms that replace identifiers.

By default ingest keeps no names, birth dates, addresses, free-text interpretations or device serials
(readers never pass them on), and replaces patient and record ids by a keyed hash (HMAC-SHA256 with a key
the site keeps outside the store). The same key gives the same pseudonym, so imaging and outcome tables put
through :meth:`Pseudonymizer.table` still link. Dates can be shifted per patient by a keyed offset; ages
above 89 are reported as 90 (HIPAA safe harbour). ``identifiers="keep"`` keeps ids as read, for sites
allowed to (and for simulated cohorts, whose subjects are no one). ``store.json`` records the policy and
the key's fingerprint, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecgscope.errors import EcgscopeError

KEY_ENV = "ECGSCOPE_PSEUDONYM_KEY_FILE"
#: Where a site's key lives unless ``--pseudonym-key`` or ``$ECGSCOPE_PSEUDONYM_KEY_FILE`` says otherwise.
DEFAULT_KEY_FILE = Path("~/.config/ecgscope/pseudonym.key")
POLICIES = ("pseudonymize", "keep")
#: Largest per-patient date shift, days (either way).
MAX_SHIFT_DAYS = 365
#: Date columns of imaging and outcome tables shifted like the ECGs' ``acquired_at``.
DATE_COLUMNS = ("acquired_at", "study_date", "index_date", "event_date", "censor_date", "date")
KEPT = ("patient and record ids (as keyed pseudonyms unless kept)", "acquisition time (shifted if asked)",
        "age (90 for anyone older than 89 when pseudonymized)", "sex",
        "source file path (site-internal, to find a rejected file)",
        "format, sampling rate, length, quality measures, lead warnings")
DROPPED = ("names", "birth dates", "addresses", "medical record numbers (as such)", "free-text interpretations "
           "and comments", "device serial numbers", "operator and site names")


class PrivacyError(EcgscopeError, ValueError):
    """No usable pseudonym key, or a key other than the one a store was made with."""


def key_path(path: str | Path | None = None) -> Path:
    """The key file to use: ``path``, else ``$ECGSCOPE_PSEUDONYM_KEY_FILE``, else the per-user default."""
    return Path(path or os.environ.get(KEY_ENV) or DEFAULT_KEY_FILE).expanduser()


def load_key(path: str | Path | None = None, create: bool = True) -> bytes:
    """Read the site's key; create a random 32-byte one (mode 0600) when there is none and ``create``."""
    file = key_path(path)
    if not file.exists():
        if not create:
            raise PrivacyError(f"no pseudonym key at {file}; give the key the store was made with "
                               f"(--pseudonym-key FILE or ${KEY_ENV})")
        file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    text = file.read_text().strip()
    if len(text) < 32:
        raise PrivacyError(f"{file} holds {len(text)} characters; a pseudonym key needs at least 32")
    return text.encode()


class Pseudonymizer:
    """Keyed pseudonyms of patient and record ids and a keyed date shift per patient."""

    def __init__(self, key: bytes):
        self._key = key

    @classmethod
    def from_file(cls, path: str | Path | None = None, create: bool = True) -> Pseudonymizer:
        """The pseudonymizer of the key at ``path`` (see :func:`key_path`)."""
        return cls(load_key(path, create))

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Names the key without revealing it (stored in ``store.json``)."""
        return self._digest("fingerprint", "ecgscope")[:16]

    def patient(self, value: object) -> str:
        """The pseudonym of a patient id ('' stays '')."""
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        return "P" + self._digest("patient", text)[:20] if text else ""

    def record(self, value: object) -> str:
        """The pseudonym of a record id."""
        return "E" + self._digest("record", str(value))[:20]

    def shift_days(self, patient: object) -> int:
        """The patient's date offset in whole days, within +-``MAX_SHIFT_DAYS`` (never 0)."""
        value = int(self._digest("date", str(patient))[:8], 16)
        return value % MAX_SHIFT_DAYS + 1 if value & 1 << 31 else -(value % MAX_SHIFT_DAYS + 1)

    def table(self, table: pd.DataFrame, shift_dates: bool = False) -> pd.DataFrame:
        """A site table (imaging, outcomes) with ``patient_id`` (and ``ecg_id``) mapped as ingest mapped the
        store's, and its date columns shifted by the same per-patient offset when ``shift_dates``."""
        out = table.copy()
        raw = out["patient_id"].astype(str)
        if shift_dates:
            offsets = pd.to_timedelta(raw.map(self.shift_days), unit="D")
            for column in DATE_COLUMNS:
                if column in out.columns:
                    out[column] = pd.to_datetime(out[column]) + offsets
        out["patient_id"] = raw.map(self.patient)
        if "ecg_id" in out.columns:
            out["ecg_id"] = out["ecg_id"].astype(str).map(self.record)
        return out


@dataclass(frozen=True)
class PrivacyPolicy:
    """What a store keeps of identifiers; written to ``store.json``."""

    identifiers: str = "pseudonymize"
    shift_dates: bool = False
    key_fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.identifiers not in POLICIES:
            raise PrivacyError(f"identifiers must be one of {POLICIES}, not {self.identifiers!r}")
        if self.shift_dates and self.identifiers != "pseudonymize":
            raise PrivacyError("shifting dates needs pseudonymized ids (the offset is keyed per patient)")

    def to_dict(self) -> dict:
        """The ``privacy`` block of ``store.json``."""
        return {"identifiers": self.identifiers, "shift_dates": self.shift_dates,
                "key_fingerprint": self.key_fingerprint, "kept": list(KEPT), "dropped": list(DROPPED)}

    @classmethod
    def from_dict(cls, data: dict | None) -> PrivacyPolicy:
        """Read the ``privacy`` block (a store made before there was one kept its ids)."""
        if not data:
            return cls(identifiers="keep")
        return cls(data["identifiers"], bool(data.get("shift_dates")), data.get("key_fingerprint", ""))

    def check_key(self, pseudonymizer: Pseudonymizer, where: str) -> None:
        """Refuse a key other than the store's: its pseudonyms would never link."""
        if self.identifiers == "pseudonymize" and pseudonymizer.fingerprint != self.key_fingerprint:
            raise PrivacyError(f"{where} was pseudonymized with the key of fingerprint {self.key_fingerprint}; "
                               f"this key's is {pseudonymizer.fingerprint} (--pseudonym-key FILE or ${KEY_ENV})")

    def apply(self, meta: dict, pseudonymizer: Pseudonymizer | None) -> dict:
        """One manifest row's identifying fields under this policy (``meta`` holds them as read)."""
        if self.identifiers == "keep" or pseudonymizer is None:
            return meta
        age = meta.get("age")
        if age is not None and not pd.isna(age) and float(age) > 89:
            meta["age"] = 90.0
        raw_patient = meta.get("patient_id") or ""
        if self.shift_dates and meta.get("acquired_at") is not None and not pd.isna(meta["acquired_at"]):
            meta["acquired_at"] = meta["acquired_at"] + pd.Timedelta(days=pseudonymizer.shift_days(raw_patient))
        meta["patient_id"] = pseudonymizer.patient(raw_patient)
        meta["ecg_id"] = pseudonymizer.record(meta["ecg_id"])
        return meta
