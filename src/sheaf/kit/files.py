"""Files only their owner can read: the data directory holds accounts, uploads and keys.

Created 0700 (directories) and 0600 (files) from the start, whatever the umask, rather
than tightened afterwards: there is no moment at which another user could open them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents, each 0700 (existing ones are left alone;
    ``Path.mkdir(parents=True)`` would create the parents with the umask's mode)."""
    missing = []
    here = path
    while not here.exists():
        missing.append(here)
        here = here.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
    return path


def private_file(path: Path, *, truncate: bool = False) -> None:
    """Make sure ``path`` exists as a file created 0600; a writer that opens it later
    keeps that mode (opening an existing file does not change its permissions)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else 0)
    os.close(os.open(path, flags, FILE_MODE))


def write_private_text(path: Path, text: str) -> None:
    """Write a new file (or replace one's content) readable only by its owner."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "w") as f:
        f.write(text)
