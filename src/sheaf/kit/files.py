"""Files only their owner can read: the data directory holds accounts, uploads and keys.

Created 0700 (directories) and 0600 (files) from the start, whatever the umask, rather
than tightened afterwards: there is no moment at which another user could open them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

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


def warn_if_shared(path: Path) -> None:
    """Log a warning if others may enter ``path`` (made before sheaf created it private):
    its files may be readable through it. Left as it is: the operator may mean it."""
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("the data directory %s is open to other users (mode %s): its "
                        "database, uploads and keys may be readable by them; "
                        "`chmod 700` it", path, oct(mode))
