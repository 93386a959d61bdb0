"""The institutions every sheaf has: the ``mxbank`` sandbox and ``statement_file``.

Their migration seeds them; ``sheaf db upgrade`` (and every start) puts back any that went
missing, so a database emptied by hand (or by a test) still has them. The guids are fixed:
clients' test suites may name MX Bank's credential fields by guid.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from sheaf.finance.models import Institution
from sheaf.kit.base import utcnow

BUILTIN: list[dict[str, Any]] = [
    {"code": "mxbank", "guid": "INS-1572a04c-912b-59bf-5841-332c7dfafaef",
     "name": "MX Bank", "connector": "sandbox", "config": {}, "url": "https://www.mx.com",
     "credentials": [
         {"guid": "CRD-9f61fb4c-912c-bd1e-b175-ccc7f0275cc1", "field_name": "username",
          "label": "Username", "type": "LOGIN", "field_type": "TEXT", "display_order": 0},
         {"guid": "CRD-e3d7ea81-aac7-05e5-fbdd-af2f6b4e0d4e", "field_name": "password",
          "label": "Password", "type": "PASSWORD", "field_type": "PASSWORD",
          "display_order": 1}]},
    {"code": "statement_file", "guid": "INS-7d0e5b9a-3c4f-4e1a-9b6d-2f8a1c5e7d30",
     "name": "Statement file (OFX / QFX)", "connector": "file", "config": {}, "url": None,
     "credentials": []},
]


def ensure(conn: Connection) -> None:
    """Insert the built-in institutions that are missing."""
    have = set(conn.execute(select(Institution.code)).scalars())
    missing = [{**row, "created_at": utcnow()} for row in BUILTIN if row["code"] not in have]
    if missing:
        conn.execute(insert(Institution), missing)
