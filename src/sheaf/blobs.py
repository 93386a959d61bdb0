"""Uploaded files, kept where every worker can read them (a local directory by default)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

from sheaf.kit.base import new_id


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / key

    def open_new(self) -> tuple[str, IO[bytes]]:
        """A partial blob to write into; ``commit`` makes it a blob, ``discard`` drops it."""
        self.root.mkdir(parents=True, exist_ok=True)
        partial = f".{new_id()}.part"
        return partial, (self.root / partial).open("wb")

    def commit(self, partial: str) -> str:
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
            with out:
                while chunk := stream.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise OverflowError(size)
                    out.write(chunk)
            return self.commit(partial), size
        finally:
            self.discard(partial)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

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
