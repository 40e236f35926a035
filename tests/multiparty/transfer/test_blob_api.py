"""The blob REST endpoints: streamed upload (raw and multipart), limits, streamed download."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI

from charter.api.blobs import FileBlobRecords, blob_router
from charter.api.problems import PROBLEM_JSON, install_problem_handlers
from charter.multiparty.transfer import BlobRef, BlobStore

from .mesh import Mesh

MiB = 1 << 20


def client_for(*routers: APIRouter) -> httpx.AsyncClient:
    app = FastAPI()
    install_problem_handlers(app)
    for r in routers:
        app.include_router(r, prefix="/api/v1")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node")


def store_client(root: Path, limit: int) -> tuple[BlobStore, httpx.AsyncClient]:
    store = BlobStore(root / "blobs", max_size=limit)
    return store, client_for(blob_router(store, FileBlobRecords(root / "records")))


def leftovers(store: BlobStore) -> list[Path]:
    return [p for sub in ("uploads", "objects", "partial") for p in (store.root / sub).rglob("*")]


async def test_a_large_upload_streams_to_disk_without_being_held(tmp_path: Path) -> None:
    store, client = store_client(tmp_path, 128 * MiB)
    sha = hashlib.sha256()
    block = os.urandom(MiB)

    async def body() -> AsyncIterator[bytes]:
        for i in range(64):
            chunk = bytes([i]) + block[1:]
            sha.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        async with client:
            r = await client.post("/api/v1/data/blob?name=big.bin", content=body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["blob"] == {
        "hash": sha.hexdigest(),
        "size": str(64 * MiB),
        "name": "big.bin",
        "content_type": None,
    }
    assert peak < 16 * MiB, f"the upload held {peak} bytes at once"
    assert store.size(bytes.fromhex(doc["blob"]["hash"])) == 64 * MiB
    assert not list((store.root / "uploads").iterdir())


async def test_over_the_limit_is_413_and_nothing_is_kept(tmp_path: Path) -> None:
    store, client = store_client(tmp_path, MiB)
    two = os.urandom(2 * MiB)

    async def streamed() -> AsyncIterator[bytes]:
        for i in range(0, len(two), 256 << 10):
            yield two[i : i + 256 << 10]

    async with client:
        declared = await client.post("/api/v1/data/blob", content=two)  # Content-Length
        chunked = await client.post("/api/v1/data/blob", content=streamed())
        multipart = await client.post(
            "/api/v1/data/blob", files={"file": ("a.bin", two, "application/octet-stream")}
        )
        exact = await client.post("/api/v1/data/blob", content=two[:MiB])

        async def streamed_form() -> AsyncIterator[bytes]:
            yield b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
            async for chunk in streamed():
                yield chunk
            yield b"\r\n--XyZ--\r\n"

        form = await client.post(
            "/api/v1/data/blob",
            content=streamed_form(),
            headers={"content-type": "multipart/form-data; boundary=XyZ"},
        )
    for r in (declared, chunked, multipart, form):
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.json()["code"] == "mp.blob.too_large"
    assert exact.status_code == 201
    kept = leftovers(store)
    assert [p.name for p in kept if p.is_file()] == [exact.json()["blob"]["hash"]]


async def test_multipart_upload_and_streamed_download(tmp_path: Path) -> None:
    store, client = store_client(tmp_path, 8 * MiB)
    data = os.urandom(3 * MiB + 17)
    async with client:
        r = await client.post(
            "/api/v1/data/blob",
            data={"note": "ignored field"},
            files={"file": ("dir/Report ü.pdf", data, "application/pdf")},
        )
        assert r.status_code == 201, r.text
        doc = r.json()
        assert doc["blob"]["name"] == "Report ü.pdf"
        assert doc["blob"]["content_type"] == "application/pdf"
        assert doc["blob"]["hash"] == hashlib.sha256(data).hexdigest()
        got = await client.get(f"/api/v1/data/{doc['id']}/blob")
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["etag"] == f'"{doc["blob"]["hash"]}"'
        assert "Report%20%C3%BC.pdf" in got.headers["content-disposition"]
        blob_url = f"/api/v1/data/{doc['id']}/blob"
        part = await client.get(blob_url, headers={"range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == data[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
        rest = await client.get(blob_url, headers={"range": f"bytes={len(data) - 5}-"})
        tail = await client.get(blob_url, headers={"range": "bytes=-7"})
        assert (rest.content, tail.content) == (data[-5:], data[-7:])
        beyond = await client.get(blob_url, headers={"range": f"bytes={len(data)}-"})
        assert beyond.status_code == 416 and beyond.json()["code"] == "mp.blob.range"
        assert beyond.headers["content-range"] == f"bytes */{len(data)}"
        raw = await client.post(
            "/api/v1/data/blob", content=b"hello", headers={"content-type": "text/plain"}
        )
        assert raw.json()["blob"]["content_type"] == "text/plain"
        assert (await client.get(f"/api/v1/data/{raw.json()['id']}/blob")).content == b"hello"
        two = await client.post("/api/v1/data/blob", files=[("a", ("a", b"1")), ("b", ("b", b"2"))])
        none = await client.post("/api/v1/data/blob", files={"only": (None, b"a field")})
        missing = await client.get("/api/v1/data/0d0c4a8e-0000-4000-8000-000000000000/blob")
        bad = await client.get("/api/v1/data/..%2F..%2Fetc/blob")
    assert two.status_code == 400 and two.json()["code"] == "mp.blob.multipart"
    assert none.status_code == 400 and none.headers["content-type"] == PROBLEM_JSON
    assert missing.status_code == 404 and missing.json()["code"] == "mp.blob.not_found"
    assert bad.status_code == 404
    assert not list((store.root / "uploads").iterdir())


async def test_a_recipient_lists_its_blob_fetches_with_progress(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2) as mesh:
        n1, n2 = mesh["n1"], mesh["n2"]
        async with client_for(*n1.t.routers()) as c1:
            up = await c1.post("/api/v1/data/blob?name=x", content=os.urandom(300_000))
        blob = up.json()["blob"]
        ref = BlobRef(bytes.fromhex(blob["hash"]), int(blob["size"]))
        await n1.t.send_batch(["n2"], b"with blob", blobs=[ref])
        await n2.t.blob_ready(ref.hash, 10.0)
        async with client_for(*n2.t.routers()) as c2:
            doc = (await c2.get("/api/v1/transfers/blobs")).json()
        [item] = doc["items"]
        assert item["hash"] == blob["hash"] and item["state"] == "ready"
        assert item["received"] == item["size"] == blob["size"] and item["progress"] == 1.0
