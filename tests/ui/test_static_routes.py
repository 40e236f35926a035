"""The explorer's files: served from the package with exact types, nothing else served."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from charter.api.problems import PROBLEM_JSON, install_problem_handlers
from charter.ui import static_router
from charter.ui.static_bundle import CONTENT_TYPES, StaticBundle

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "charter" / "ui" / "static"
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^"';]*?from\s+["']([^"']+)["']""", re.MULTILINE)


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(static_router())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://node.test"
    ) as c:
        yield c


async def test_root_redirects_to_the_explorer(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 307
    assert r.headers["location"] == "/explorer"
    page = await client.get("/", follow_redirects=True)
    assert page.status_code == 200
    assert str(page.url) == "http://node.test/explorer"


async def test_the_page_and_its_policy(client: httpx.AsyncClient) -> None:
    for path in ("/explorer", "/explorer/", "/explorer/index.html"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script type="module" src="/explorer/js/main.js">' in r.text
        policy = r.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "connect-src 'self'" in policy
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_every_shipped_file_is_served_with_its_type(client: httpx.AsyncClient) -> None:
    shipped = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file())
    assert StaticBundle.from_package().paths() == shipped
    for rel in shipped:
        r = await client.get(f"/explorer/{rel}")
        assert r.status_code == 200, rel
        assert r.headers["content-type"] == CONTENT_TYPES[PurePosixPath(rel).suffix], rel
        assert r.content == (STATIC / rel).read_bytes()
    js = await client.get("/explorer/js/main.js")
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    css = await client.get("/explorer/explorer.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"


def test_the_module_graph_is_complete() -> None:
    """Every file the page or a module names exists, so no import 404s in a browser."""
    html = (STATIC / "index.html").read_text()
    named = set(re.findall(r'(?:src|href)="/explorer/([^"]+)"', html))
    assert {"js/main.js", "explorer.css", "favicon.svg"} <= named
    for rel in named:
        assert (STATIC / rel).is_file(), rel
    for module in STATIC.rglob("*.js"):
        for target in IMPORT.findall(module.read_text()):
            assert target.startswith("."), f"{module.name} imports {target}: only relative imports"
            resolved = (module.parent / target).resolve()
            assert resolved.is_file(), f"{module.name} imports missing {target}"
            assert STATIC in resolved.parents


def test_package_data_ships_every_file() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["charter"]
    for path in STATIC.rglob("*"):
        if path.is_file():
            rel = path.relative_to(STATIC.parents[1]).as_posix()  # relative to src/charter
            assert any(fnmatch.fnmatch(rel, g) and rel.count("/") == g.count("/") for g in globs), (
                rel
            )


@pytest.mark.parametrize(
    "path",
    [
        "/explorer/nope.js",
        "/explorer/js/",
        "/explorer/js/views",
        "/explorer/routes.py",
        "/explorer/../routes.py",
        "/explorer/%2e%2e/routes.py",
        "/explorer/js/%2e%2e/%2e%2e/routes.py",
        "/explorer/..%2fstatic_bundle.py",
        "/explorer/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/explorer//etc/passwd",
        "/explorer/%2fetc%2fpasswd",
        "/explorer/js/main.js%00.html",
        "/explorer/JS/MAIN.JS",
    ],
)
async def test_unknown_or_outside_paths_are_404_problems(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    assert body["status"] == 404
    assert body["code"] in ("ui.not_found", "api.not_found")
    assert "import" not in r.text and "root:" not in r.text


async def test_head_etag_and_not_modified(client: httpx.AsyncClient) -> None:
    full = await client.get("/explorer/js/main.js")
    head = await client.head("/explorer/js/main.js")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(full.content))
    etag = full.headers["etag"]
    again = await client.get("/explorer/js/main.js", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await client.get("/explorer/js/main.js", headers={"if-none-match": '"other"'})
    assert other.status_code == 200 and other.content == full.content


async def test_methods_other_than_get_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/explorer/js/main.js")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["code"] == "api.method_not_allowed"
