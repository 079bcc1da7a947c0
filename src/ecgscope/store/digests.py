"""A set of strings kept as sorted 128-bit digests, each with a number: what ingest remembers about a store.

Ingest must know every source, content key and ecg_id already stored (to add nothing twice) and every source
it has met in this run. Held as Python strings in sets and dicts that costs about 1 KiB per ECG, so ingesting
into a store of 10 million ECGs would need gigabytes; held as 16-byte BLAKE2b digests in a sorted NumPy array
(plus 8 bytes for the number) it costs 24 bytes. Two different strings share a 128-bit digest with
probability about n^2 / 2^129 (10^-25 for 10 million strings), far below any disk's error rate, so a digest
match is taken as a string match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

DIGEST = np.dtype("S16")
#: New entries wait in a dict (about 120 bytes each) until there are this many, then are merged into the sorted
#: arrays in one pass (a copy of them: at 10 million strings, about 1,200 copies of 240 MB in all).
MERGE_EVERY = 8_192


def digest(text: str) -> bytes:
    """The 16-byte BLAKE2b digest of ``text``."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class DigestIndex:
    """Strings mapped to an int64 each (a row number, a flag), in about 24 bytes per string.

    >>> seen = DigestIndex()
    >>> seen.add("a.hea", 7)
    >>> seen.get("a.hea"), seen.get("b.hea"), "a.hea" in seen, len(seen)
    (7, None, True, 1)
    """

    def __init__(self, items: Iterable[tuple[str, int]] = ()):
        self._keys = np.empty(0, DIGEST)
        self._values = np.empty(0, np.int64)
        self._pending: dict[bytes, int] = {}
        for text, value in items:
            self.add(text, value)

    def __len__(self) -> int:
        return len(self._keys) + len(self._pending)

    def __contains__(self, text: str) -> bool:
        return self.get(text) is not None

    def get(self, text: str) -> int | None:
        """The number stored with ``text``, or None when it was never added."""
        key = digest(text)
        if key in self._pending:
            return self._pending[key]
        i = int(np.searchsorted(self._keys, key))
        # NumPy hands back an S16 item without its trailing zero bytes; among 16-byte digests that is one-to-one
        if i < len(self._keys) and self._keys[i] == key.rstrip(b"\0"):
            return int(self._values[i])
        return None

    def add(self, text: str, value: int = 0) -> None:
        """Remember ``text`` with ``value`` (a string added again keeps its first value)."""
        if text in self:
            return
        self._pending[digest(text)] = int(value)
        if len(self._pending) >= MERGE_EVERY:
            self._merge()

    def set(self, text: str, value: int) -> None:
        """Remember ``text`` with ``value``, replacing the value it had."""
        key = digest(text)
        i = int(np.searchsorted(self._keys, key))
        if key not in self._pending and i < len(self._keys) and self._keys[i] == key.rstrip(b"\0"):
            self._values[i] = value
        else:
            self._pending[key] = int(value)
            if len(self._pending) >= MERGE_EVERY:
                self._merge()

    def _merge(self) -> None:
        keys = np.fromiter(self._pending, DIGEST, len(self._pending))
        values = np.fromiter(self._pending.values(), np.int64, len(self._pending))
        order = np.argsort(keys, kind="stable")
        at = np.searchsorted(self._keys, keys[order])
        self._keys = np.insert(self._keys, at, keys[order])  # one copy of the arrays, not a re-sort
        self._values = np.insert(self._values, at, values[order])
        self._pending = {}
