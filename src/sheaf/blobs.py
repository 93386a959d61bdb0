"""Uploaded files, kept where every worker can read them (a local directory by default).

A spent upload is not deleted but kept as the one spare file, which the next upload
overwrites in place, the way PostgreSQL recycles WAL segments: the kernel then reuses the
spare's cached pages and disk blocks instead of allocating new ones. On a VM whose memory
is handed out lazily, receiving a 109 MB upload took 0.4 to 0.7 s into a new file and
0.13 s into the spare.
An unused spare is swept with the other leftovers.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import IO

from sheaf.kit.base import new_id
from sheaf.kit.files import FILE_MODE, private_dir

SPARE = ".spare"


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key

    def open_new(self) -> tuple[str, IO[bytes]]:
        """A partial blob to write into; ``commit`` makes it a blob, ``discard`` drops it."""
        private_dir(self.root)
        partial = f".{new_id()}.part"
        path = self.root / partial
        try:
            os.replace(self.root / SPARE, path)  # atomic: one upload gets the spare
        except FileNotFoundError:  # a new file, only its owner may read (uploads are data)
            return partial, os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL,
                                              FILE_MODE), "wb")
        return partial, path.open("r+b")  # overwritten, then cut at commit

    def commit(self, partial: str, file: IO[bytes]) -> str:
        """Close ``file`` (written from the start, as ``open_new`` gave it) as blob data."""
        file.truncate()  # a recycled spare may have been longer
        file.close()
        key = partial.removeprefix(".").removesuffix(".part")
        os.replace(self.root / partial, self.path(key))
        return key

    def discard(self, partial: str) -> None:
        (self.root / partial).unlink(missing_ok=True)

    def put_stream(self, stream: IO[bytes], limit: int) -> tuple[str, int]:
        """Copy a stream into a new blob; raises OverflowError past ``limit`` bytes."""
        partial, out = self.open_new()
        size = 0
        try:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise OverflowError(size)
                out.write(chunk)
            return self.commit(partial, out), size
        finally:
            out.close()
            self.discard(partial)

    def delete(self, key: str) -> None:
        """Drop a blob; its file becomes the spare (replacing an older one)."""
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path(key), self.root / SPARE)
            os.utime(self.root / SPARE)  # swept after an hour unused, not an hour old

    def sweep(self, keep: set[str], older_than: float) -> list[str]:
        """Delete blobs (and abandoned partial uploads) not in ``keep`` and not modified
        for ``older_than`` seconds; returns what was deleted."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - older_than
        gone = []
        for path in self.root.iterdir():
            name = path.name
            key = name.removeprefix(".").removesuffix(".part")
            if not path.is_file() or key in keep or path.stat().st_mtime > cutoff:
                continue
            path.unlink(missing_ok=True)
            gone.append(name)
        return gone
