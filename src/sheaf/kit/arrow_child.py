"""The child process of ``arrow_read``: one query from stdin (JSON: path, sql, params),
its rows to stdout as an Arrow IPC stream; an error to stderr and exit status 1.

Run by its path, never imported: the ADBC driver it loads links its own copy of SQLite,
which must not share a process with the sqlite3 module's (see arrow_read)."""

import json
import sys
import urllib.parse

import adbc_driver_sqlite.dbapi
import pyarrow.ipc


def main() -> None:
    request = json.loads(sys.stdin.read())
    # (quoted: a ? or # in the path would end it early in a URI)
    uri = f"file:{urllib.parse.quote(request['path'])}?mode=ro"
    with adbc_driver_sqlite.dbapi.connect(uri) as db, \
            db.cursor() as cursor:
        cursor.execute(request["sql"], request["params"])
        reader = cursor.fetch_record_batch()
        with pyarrow.ipc.new_stream(sys.stdout.buffer, reader.schema) as out:
            for batch in reader:
                out.write_batch(batch)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # (one line for the parent's message)
        print(" ".join(f"{type(exc).__name__}: {exc}".split()), file=sys.stderr)
        sys.exit(1)
