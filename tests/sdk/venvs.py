"""Build the isolated virtualenvs that hold the official SailPoint Python SDKs.

The SDKs pin old pydantic/urllib3 releases that clash with the project's own
dependencies, so each SDK major version lives in its own virtualenv under
``<repo>/.sdk-venvs/``. Creation is idempotent: a marker file holding the
pinned requirement is written only after a successful install, so a
half-created venv (interrupted run, failed pip) has no marker and is rebuilt.

Run directly (``python tests/sdk/venvs.py``) to pre-build every venv.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENVS_DIR = REPO_ROOT / ".sdk-venvs"
MARKER_NAME = ".sheaf-sdk-spec"

#: venv name -> pinned requirement spec installed into it.
SDK_SPECS: dict[str, str] = {
    "sailpoint2": "sailpoint==2.1.72",
    "sailpoint1": "sailpoint==1.4.2",
    "mx1": "mx-platform-python==1.12.0",
}
#: venv name -> the module that must import once the spec is installed.
SDK_MODULES: dict[str, str] = {"mx1": "mx_platform_python"}


def venv_python(venv_dir: Path) -> Path:
    """Path of the interpreter inside ``venv_dir`` (POSIX or Windows layout)."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _run(cmd: list[str]) -> None:
    """Run ``cmd`` quietly; on failure raise with pip's output so the cause is visible."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Exclusive lock so parallel test workers do not build the same venv twice."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no locking; builds are still idempotent.
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_ready(venv_dir: Path, spec: str) -> bool:
    marker = venv_dir / MARKER_NAME
    return (
        marker.is_file() and marker.read_text().strip() == spec and venv_python(venv_dir).exists()
    )


def ensure_venv(name: str, spec: str, base_dir: Path = VENVS_DIR) -> Path:
    """Create ``base_dir/name`` with ``spec`` installed unless the marker says it is done.

    Returns the venv's python executable.
    """
    venv_dir = base_dir / name
    python = venv_python(venv_dir)
    if _is_ready(venv_dir, spec):
        return python
    with _locked(base_dir / f".{name}.lock"):
        if not _is_ready(venv_dir, spec):  # another process may have finished meanwhile
            _build(venv_dir, spec)
    return python


def _build(venv_dir: Path, spec: str) -> None:
    """(Re)create the venv from scratch and install ``spec``; write the marker last."""
    python = venv_python(venv_dir)
    marker = venv_dir / MARKER_NAME

    # Missing/stale marker: whatever is there is untrusted, start from scratch.
    if venv_dir.exists():
        shutil.rmtree(venv_dir)
    _run([sys.executable, "-m", "venv", str(venv_dir)])
    pip = [str(python), "-m", "pip", "--quiet", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "install", spec])
    # Sanity check: the SDK must import before we declare the venv usable.
    _run([str(python), "-c", f"import {SDK_MODULES.get(venv_dir.name, 'sailpoint')}"])
    marker.write_text(spec + "\n")


def ensure_all(base_dir: Path = VENVS_DIR) -> dict[str, Path]:
    """Ensure every SDK venv exists; map venv name -> python executable."""
    return {name: ensure_venv(name, spec, base_dir) for name, spec in SDK_SPECS.items()}


if __name__ == "__main__":
    import time

    start = time.monotonic()
    for venv_name, py in ensure_all().items():
        print(f"{venv_name}: {py}")
    print(f"done in {time.monotonic() - start:.1f}s")
