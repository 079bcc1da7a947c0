"""Where a store lives: a local folder, or a prefix in an object store reached through fsspec.

A store path may be a folder or an fsspec URL: ``s3://bucket/stores/ptbxl``, ``gs://...``, ``az://...``,
``memory://...`` (tests). Object stores have no rename, so a part is published by uploading it under its final
name: an object store makes an object visible only when its upload is complete (a multipart upload that never
completes is never listed), which is the guarantee a local ``os.replace`` gives. Filesystems without that
guarantee (SFTP, FTP, WebDAV) are refused rather than risk a half-written part being read.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ecgscope.errors import EcgscopeError
from ecgscope.io.atomic import atomic_file

#: fsspec protocols whose writes are all-or-nothing per object, so a part appears only when complete.
OBJECT_STORE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory")


class LocationError(EcgscopeError, ValueError):
    """A store URL names a filesystem ecgscope cannot write to safely, or its driver is not installed."""


def is_url(root: str | Path) -> bool:
    """Whether ``root`` names an object store (``scheme://``) rather than a local folder."""
    text = str(root)
    return "://" in text and not text.startswith("file://")


class Location:
    """A store root: read, list and publish files by their path relative to it (``waveforms/part-1.h5``)."""

    def __init__(self, root: str | Path):
        text = str(root)
        self.local = not is_url(text)
        if self.local:
            self.root: str | Path = Path(text.removeprefix("file://"))
            self.url = str(self.root)
            return
        import fsspec

        protocol = text.split("://", 1)[0]
        if protocol not in OBJECT_STORE_PROTOCOLS:
            raise LocationError(f"{text}: stores may live on a local disk or in an object store "
                                f"({', '.join(p + '://' for p in OBJECT_STORE_PROTOCOLS)}), not on {protocol}://, "
                                "whose writes are not all-or-nothing")
        try:
            self.fs, path = fsspec.core.url_to_fs(text)
        except ImportError as exc:
            raise LocationError(f"{text}: the driver for {protocol}:// is not installed ({exc}); "
                                "pip install 'ecgscope[cloud]'") from exc
        self.path = path.rstrip("/")
        self.url = self.root = f"{protocol}://{self.path}"

    def __str__(self) -> str:
        return self.url

    def key(self, relative: str) -> str:
        """The full path of ``relative`` in this location's filesystem (a local path for a folder)."""
        return str(self.root / relative) if self.local else f"{self.path}/{relative}"

    def url_of(self, relative: str) -> str:
        """``relative`` as a URL fsspec opens in any process (a plain path for a folder)."""
        return self.key(relative) if self.local else f"{self.url}/{relative}"

    def exists(self, relative: str) -> bool:
        """Whether ``relative`` exists (a remote listing is re-read: another process may have written it)."""
        if self.local:
            return (self.root / relative).exists()
        self.fs.invalidate_cache()
        return self.fs.exists(self.key(relative))

    def read_bytes(self, relative: str) -> bytes:
        """The whole content of ``relative``."""
        return (self.root / relative).read_bytes() if self.local else self.fs.cat_file(self.key(relative))

    def open(self, relative: str):
        """``relative`` opened for binary reading (a local file, or an fsspec file that reads on demand)."""
        return (self.root / relative).open("rb") if self.local else self.fs.open(self.key(relative), "rb")

    def parts(self, folder: str, suffix: str) -> dict[int, str]:
        """``{part number: relative path}`` of the ``part-NNNNNN<suffix>`` files in ``folder``."""
        if self.local:
            names = [p.name for p in (self.root / folder).glob(f"part-*{suffix}")]
        else:
            self.fs.invalidate_cache()
            names = [k.rsplit("/", 1)[-1] for k in self.fs.glob(self.key(f"{folder}/part-*{suffix}"))]
        return {int(name[len("part-"):-len(suffix)]): f"{folder}/{name}" for name in names
                if name.endswith(suffix) and name[len("part-"):-len(suffix)].isdigit()}

    @contextmanager
    def writing(self, relative: str) -> Iterator[Path]:
        """Yield a local temporary path to write; on success it appears at ``relative`` all at once (a rename in
        a folder, one upload to an object store, visible only when complete); on error nothing appears."""
        if self.local:
            with atomic_file(self.root / relative) as tmp:
                yield tmp
            return
        fd, tmp = tempfile.mkstemp(prefix="ecgscope-", suffix=".partial")
        os.close(fd)
        try:
            yield Path(tmp)
            self.fs.put_file(tmp, self.key(relative))
        finally:
            Path(tmp).unlink(missing_ok=True)

    def remove(self, relative: str) -> None:
        """Delete ``relative`` if it exists."""
        if self.local:
            (self.root / relative).unlink(missing_ok=True)
        elif self.fs.exists(self.key(relative)):
            self.fs.rm_file(self.key(relative))

    def size(self, relative: str) -> int:
        """Bytes of the file ``relative``."""
        return (self.root / relative).stat().st_size if self.local else int(self.fs.size(self.key(relative)))
