"""Uploaded files, kept where every worker can read them (a local directory by default)."""

from __future__ import annotations

import os
import shutil
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

    def put_stream(self, stream: IO[bytes], limit: int) -> tuple[str, int]:
        """Copy a stream into a new blob; raises OverflowError past ``limit`` bytes."""
        self.root.mkdir(parents=True, exist_ok=True)
        key = new_id()
        tmp = self.root / f".{key}.part"
        size = 0
        try:
            with tmp.open("wb") as out:
                while chunk := stream.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise OverflowError(size)
                    out.write(chunk)
            os.replace(tmp, self.path(key))
        finally:
            tmp.unlink(missing_ok=True)
        return key, size

    def put_file(self, source: Path) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        key = new_id()
        shutil.copyfile(source, self.path(key))
        return key

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
