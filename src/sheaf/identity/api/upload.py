"""Receiving a load-accounts upload straight into the blob store.

Starlette's form parser spools a file part to a temporary file, which would then be
copied into the blob store: two extra passes over a 100 MB snapshot. This parser streams
the ``file`` part into its blob as the request arrives and keeps the small text parts.

Each load is a full snapshot, so a file cut short would delete the accounts it lost. An
upload is taken only whole: a body that ends before its closing boundary, does not match
its Content-Length, or whose connection closes early is refused, and so is a file part
that ends mid-row (``csvrecords.unfinished_row``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from sheaf.blobs import BlobStore
from sheaf.errors import BadRequest, upload_too_large
from sheaf.kit import csvrecords

MAX_TEXT_FIELD = 64 * 1024
AGAIN = "Nothing was changed; send the whole file again"


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    blob: str | None = None
    size: int = 0
    # SHA-256 of the file part: what an Idempotency-Key's request is compared on, with
    # the endpoint and options (the same key with another file is another request)
    digest: str | None = None


class _Receiver:
    """python-multipart callbacks: route each part to the blob file or a text field."""

    def __init__(self, blobs: BlobStore, limit: int, digest: bool) -> None:
        self.blobs = blobs
        self.limit = limit
        self.upload = Upload()
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name: str | None = None
        self.text = bytearray()
        self.file: IO[bytes] | None = None
        self.partial: str | None = None
        self.hash = hashlib.sha256() if digest else None

    def on_part_begin(self) -> None:
        self.headers, self.name, self.text = {}, None, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("latin-1")
        if self.name == "file":
            if self.file is not None:
                raise BadRequest("Send one 'file' part, not several")
            self.partial, self.file = self.blobs.open_new()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.name == "file" and self.file is not None:
            self.upload.size += end - start
            if self.upload.size > self.limit:
                raise upload_too_large(self.limit)
            self.file.write(data[start:end])
            if self.hash is not None:
                self.hash.update(data[start:end])
        else:
            self.text += data[start:end]
            if len(self.text) > MAX_TEXT_FIELD:
                raise BadRequest(f"The form field '{self.name}' is too long")

    def on_part_end(self) -> None:
        if self.name and self.name != "file":
            self.upload.fields[self.name] = self.text.decode("utf-8", errors="replace")

    def finish(self) -> Upload:
        if self.file is not None and self.partial is not None:
            self.upload.blob = self.blobs.commit(self.partial, self.file)
            self.upload.digest = self.hash.hexdigest() if self.hash is not None else None
            self.file = None
        return self.upload

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.partial is not None:
            self.blobs.discard(self.partial)


async def receive(request: Request, blobs: BlobStore, limit: int, *,
                  delimiter: str = ",", digest: bool = False) -> Upload:
    """Read a multipart or urlencoded load-accounts body; the file part becomes a blob,
    once the body and the file are known to be whole. ``digest``: also take the file's
    SHA-256 (only an Idempotency-Key needs it: ~0.1 s per 100 MB otherwise spent)."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"application/x-www-form-urlencoded":
        form = await request.form()
        return Upload(fields={k: v for k, v in form.items() if isinstance(v, str)})
    if content_type != b"multipart/form-data":
        if not content_type and request.headers.get("content-length", "0").strip() in ("0", ""):
            return Upload()
        raise BadRequest("Send the file as multipart/form-data with a 'file' part")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary")
    receiver = _Receiver(blobs, limit, digest)
    parser = MultipartParser(boundary, {  # type: ignore[arg-type]
        name: getattr(receiver, name) for name in (
            "on_part_begin", "on_part_data", "on_part_end", "on_header_field",
            "on_header_value", "on_header_end", "on_headers_finished")
    })
    declared = request.headers.get("content-length")
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            parser.write(chunk)
        if declared is not None and declared.strip().isdigit() and received != int(declared):
            raise BadRequest(
                f"The request body is {received} bytes but its Content-Length says {declared}: "
                f"the upload was cut short or altered on the way. {AGAIN}")
        parser.finalize()
        if parser.state != MultipartState.END:
            closing = f"--{boundary.decode('latin-1')}--"
            raise BadRequest(f"The multipart body ends before its closing boundary "
                             f"('{closing}'): the upload was cut short. {AGAIN}")
        received_upload = receiver.finish()
    except FormParserError as exc:
        receiver.abort()
        raise BadRequest(f"The multipart body could not be read: {exc}") from None
    except ClientDisconnect:
        receiver.abort()
        raise BadRequest(f"The connection closed before the whole body arrived: the upload "
                         f"was cut short. {AGAIN}") from None
    except BaseException:
        receiver.abort()
        raise
    if received_upload.blob is not None:
        await run_in_threadpool(_refuse_unfinished, blobs, received_upload.blob, delimiter)
    return received_upload


def _refuse_unfinished(blobs: BlobStore, blob: str, delimiter: str) -> None:
    problem = csvrecords.unfinished_row(blobs.path(blob), delimiter)
    if problem is not None:
        blobs.delete(blob)
        raise BadRequest(
            f"The file ends in the middle of a row ({problem}): the upload looks cut short. "
            f"{AGAIN}, with a line break after its last line")
