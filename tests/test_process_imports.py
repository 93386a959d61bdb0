"""What each kind of process imports: an API process never loads the data libraries (each
of `serve --workers N`'s processes would carry them: ~100 MiB apiece), and a job worker
loads them as it starts, before its first job (else the first load pays the import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DATA_LIBRARIES = ("polars", "pyarrow", "ofxtools", "openpyxl", "adbc_driver_sqlite")

PROBE = """
import sys
{code}
print(",".join(m for m in {modules!r} if m in sys.modules) or "-")
"""


def _loaded(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(code=code, modules=DATA_LIBRARIES)],
                          capture_output=True, text=True, timeout=120, check=True)
    return set(done.stdout.strip().splitlines()[-1].split(",")) - {"-"}


def test_the_api_app_loads_no_data_library() -> None:
    assert _loaded("from sheaf.app import create_app; create_app()") == set()


def test_a_job_worker_loads_them_before_its_first_job() -> None:
    loaded = _loaded("from sheaf.jobs import worker; worker.import_handlers()")
    assert {"polars", "pyarrow", "ofxtools"} <= loaded
    # never: its own copy of SQLite would drop the sqlite3 module's locks (kit/arrow_read)
    assert "adbc_driver_sqlite" not in loaded


def test_checking_an_upload_for_a_cut_row_loads_no_data_library(tmp_path: Path) -> None:
    # Every load-accounts upload is checked in the API process before its task exists:
    # whole, cut mid-row, or with a quote left open, no file may bring polars in (it once
    # did, on the first upload, and each API process then carried it).
    code = f"""
import io
from pathlib import Path
from sheaf.app import create_app
from sheaf.blobs import BlobStore
from sheaf.errors import BadRequest
from sheaf.identity.api import upload
create_app()
blobs = BlobStore(Path({str(tmp_path)!r}))
cases = {{"whole": b"id,name\\n1,a\\n", "cut": b"id,name\\n1,a\\n2",
          "open": b'id,name\\n1,"a\\nb'}}
refused = {{}}
for name, body in cases.items():
    blob, _size = blobs.put_stream(io.BytesIO(body), 1 << 20)
    try:
        upload._refuse_unfinished(blobs, blob, ",")
    except BadRequest as exc:
        refused[name] = str(exc)
assert set(refused) == {{"cut", "open"}} and "line 3" in refused["cut"], refused
"""
    assert _loaded(code) == set()
