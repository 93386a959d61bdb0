"""The blob store: uploads kept for workers, spent files recycled for the next upload."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from sheaf.blobs import SPARE, BlobStore


def test_a_spent_blob_is_recycled_and_cut_to_the_new_length(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    first, _ = blobs.put_stream(io.BytesIO(b"x" * 10_000), 1 << 20)
    inode = blobs.path(first).stat().st_ino
    blobs.delete(first)
    assert not blobs.path(first).exists() and (tmp_path / SPARE).exists()

    second, size = blobs.put_stream(io.BytesIO(b"short"), 1 << 20)
    assert size == 5 and blobs.path(second).read_bytes() == b"short"
    assert blobs.path(second).stat().st_ino == inode  # the same file, overwritten
    assert not (tmp_path / SPARE).exists()  # one upload took it; the next gets a new file
    third, _ = blobs.put_stream(io.BytesIO(b"third"), 1 << 20)
    assert blobs.path(third).read_bytes() == b"third"


def test_a_refused_upload_leaves_nothing_behind(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    spent, _ = blobs.put_stream(io.BytesIO(b"y" * 100), 1 << 20)
    blobs.delete(spent)
    with pytest.raises(OverflowError):
        blobs.put_stream(io.BytesIO(b"z" * 200), 150)
    assert os.listdir(tmp_path) == []


def test_an_unused_spare_is_swept(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    spent, _ = blobs.put_stream(io.BytesIO(b"y"), 10)
    blobs.delete(spent)
    assert blobs.sweep(set(), older_than=3600) == []  # just used: kept
    old = os.stat(tmp_path / SPARE).st_mtime - 7200
    os.utime(tmp_path / SPARE, (old, old))
    assert blobs.sweep(set(), older_than=3600) == [SPARE]
