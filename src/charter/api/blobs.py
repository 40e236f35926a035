"""REST endpoints for blobs: streamed upload, streamed download, transfer progress.

``POST /api/v1/data/blob`` takes the blob as the raw request body (``?name=`` names it)
or as the first file part of a ``multipart/form-data`` body. Either way the bytes go
from the socket to a file under ``blobs/uploads/`` chunk by chunk, hashed as they are
written: the node never holds the blob in memory. Past the size limit the upload is
refused with 413 problem+json and its partial file removed (a declared
``Content-Length`` over the limit is refused before anything is read). The answer is a
data id (what messages reference as ``{"id": ...}``) with the blob's SHA-256 and size.

``GET /api/v1/data/{id}/blob`` streams the blob back; ``GET /api/v1/transfers/blobs``
lists the blob fetches this node is doing (bytes received of each: a progress figure).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.responses import JSONResponse, Response, StreamingResponse

from charter.api.problems import Problem
from charter.multiparty.transfer.blobs import BlobInfo, BlobStore, BlobWriter
from charter.multiparty.transfer.errors import BlobNotFound, BlobTooLarge
from charter.multiparty.transfer.model import BlobProgress

__all__ = ["BlobRecord", "BlobRecords", "FileBlobRecords", "blob_router"]

_STREAM_CHUNK = 256 << 10
_MULTIPART_SLACK = 64 << 10
"""Bytes a multipart body may carry besides its file (boundaries, part headers, fields)."""
_NAME_MAX = 256
_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """A data item that is a blob: what an upload creates and a message references."""

    id: str
    hash: bytes
    size: int
    name: str | None
    content_type: str | None
    created_us: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "blob": {
                "hash": self.hash.hex(),
                "size": str(self.size),
                "name": self.name,
                "content_type": self.content_type,
            },
            "created_us": str(self.created_us),
        }


class BlobRecords(Protocol):
    """Where data ids of uploaded blobs are kept (the multi-party store, in a node)."""

    async def add_blob(
        self, info: BlobInfo, name: str | None, content_type: str | None
    ) -> BlobRecord: ...

    async def get_blob(self, data_id: str) -> BlobRecord | None: ...


class FileBlobRecords:
    """Data ids as small JSON files in a directory: for a node without an index store."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def add_blob(
        self, info: BlobInfo, name: str | None, content_type: str | None
    ) -> BlobRecord:
        rec = BlobRecord(
            str(uuid.uuid4()), info.hash, info.size, name, content_type, time.time_ns() // 1000
        )
        body = json.dumps(
            {
                "hash": info.hex,
                "size": info.size,
                "name": name,
                "content_type": content_type,
                "created_us": rec.created_us,
            }
        ).encode()
        tmp = self.directory / f"{rec.id}.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, self.directory / f"{rec.id}.json")
        return rec

    async def get_blob(self, data_id: str) -> BlobRecord | None:
        if not _ID_RE.match(data_id):
            return None
        try:
            doc = json.loads((self.directory / f"{data_id}.json").read_bytes())
        except FileNotFoundError:
            return None
        return BlobRecord(
            data_id,
            bytes.fromhex(doc["hash"]),
            int(doc["size"]),
            doc["name"],
            doc["content_type"],
            int(doc["created_us"]),
        )


def _too_large(limit: int) -> Problem:
    return Problem(413, BlobTooLarge.code, f"a blob may hold at most {limit} bytes")


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        return None
    if len(name) > _NAME_MAX or any(ord(c) < 32 for c in name):
        raise Problem(400, "mp.blob.name", f"a blob name is 1 to {_NAME_MAX} printable characters")
    return name


class _MultipartSink:
    """Feeds the first file part of a multipart body to a blob writer, as it streams."""

    def __init__(self, writer: BlobWriter, boundary: bytes) -> None:
        self.writer = writer
        self.filename: str | None = None
        self.content_type: str | None = None
        self.files = 0
        self.other_bytes = 0
        self._in_file = False
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
            },
        )

    def _part_begin(self) -> None:
        self._headers = {}
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" in params:
            self.files += 1
            if self.files > 1:
                raise Problem(400, "mp.blob.multipart", "an upload carries one file")
            self._in_file = True
            self.filename = params[b"filename"].decode("utf-8", "replace")
            ctype = self._headers.get(b"content-type")
            self.content_type = ctype.decode("latin-1").strip() if ctype else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.writer.write(data[start:end])
            return
        self.other_bytes += end - start
        if self.other_bytes > _MULTIPART_SLACK:
            raise Problem(
                400, "mp.blob.multipart", "the form fields besides the file are too large"
            )


def blob_router(
    store: BlobStore,
    records: BlobRecords,
    *,
    progress: Callable[[], Sequence[BlobProgress]] | None = None,
) -> APIRouter:
    """The blob routes over ``store``, with data ids kept in ``records``."""
    router = APIRouter(tags=["data"])

    @router.post(
        "/data/blob",
        status_code=201,
        summary="Upload a blob (raw body or multipart/form-data), streamed to disk",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                },
                "required": True,
            }
        },
    )
    async def upload_blob(
        request: Request,
        name: Annotated[str | None, Query(description="the blob's name (raw uploads)")] = None,
    ) -> Response:
        limit = store.max_size
        ctype, params = parse_options_header(request.headers.get("content-type"))
        multipart = ctype == b"multipart/form-data"
        slack = _MULTIPART_SLACK if multipart else 0
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + slack:
            raise _too_large(limit)
        writer = store.writer()
        try:
            if multipart:
                boundary = params.get(b"boundary")
                if not boundary:
                    raise Problem(400, "mp.blob.multipart", "multipart body without a boundary")
                sink = _MultipartSink(writer, boundary)
                async for chunk in request.stream():
                    sink.parser.write(chunk)
                sink.parser.finalize()
                if sink.files != 1:
                    raise Problem(400, "mp.blob.multipart", "the multipart body has no file part")
                blob_name = _clean_name(sink.filename)
                content_type = sink.content_type
            else:
                blob_name = _clean_name(name)
                content_type = ctype.decode("latin-1") or None
                async for chunk in request.stream():
                    writer.write(chunk)
            info = await writer.commit()
        except BlobTooLarge:
            writer.abort()
            raise _too_large(limit) from None
        except BaseException:
            writer.abort()
            raise
        rec = await records.add_blob(info, blob_name, content_type)
        return JSONResponse(rec.to_json(), status_code=201)

    @router.get(
        "/data/{data_id}/blob",
        summary="Download a blob, streamed (a single byte range may be asked for)",
    )
    async def download_blob(data_id: str, request: Request) -> Response:
        rec = await records.get_blob(data_id)
        if rec is None:
            raise Problem(404, "mp.blob.not_found", f"no blob data {data_id!r}")
        try:
            f = store.open(rec.hash)
        except BlobNotFound:
            raise Problem(
                404, "mp.blob.not_found", f"blob {rec.hash.hex()} has not arrived here (yet)"
            ) from None

        try:
            span = _byte_range(request.headers.get("range"), rec.size)
        except Problem:
            f.close()
            raise
        start, end = span if span is not None else (0, rec.size)

        async def chunks() -> AsyncIterator[bytes]:
            with f:
                f.seek(start)
                left = end - start
                while left > 0 and (block := f.read(min(_STREAM_CHUNK, left))):
                    left -= len(block)
                    yield block

        headers = {
            "Content-Length": str(end - start),
            "ETag": f'"{rec.hash.hex()}"',
            "Accept-Ranges": "bytes",
        }
        if span is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{rec.size}"
        if rec.name:
            headers["Content-Disposition"] = _disposition(rec.name)
        return StreamingResponse(
            chunks(),
            status_code=206 if span is not None else 200,
            media_type=rec.content_type or "application/octet-stream",
            headers=headers,
        )

    @router.get("/transfers/blobs", summary="Blob fetches of this node and their progress")
    async def blob_transfers() -> Response:
        items = [p.to_json() for p in (progress() if progress is not None else ())]
        return JSONResponse({"items": items, "total": len(items)})

    return router


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single-range ``Range`` header, or None to send
    the whole blob (no header, or several ranges); 416 if it cannot be satisfied."""
    if header is None or "," in header:
        return None
    m = _RANGE_RE.match(header.strip())
    if m is None or m.group(1) == m.group(2) == "":
        return None  # not a byte range we know: the whole blob, as RFC 9110 allows
    first, last = m.group(1), m.group(2)
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = size if last == "" else min(size, int(last) + 1)
    if start >= size or start >= end:
        raise Problem(
            416,
            "mp.blob.range",
            f"the blob has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def _disposition(name: str) -> str:
    from urllib.parse import quote

    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
