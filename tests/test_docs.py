"""The documentation pages work without internet: every asset they load is served by the app."""

from __future__ import annotations

import re

import httpx

_ASSET = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""")


async def _page(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_the_root_redirects_to_the_docs(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/docs"


async def test_docs_pages_name_no_external_host(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        html = await _page(client, path)
        # Any absolute URL at all would be a host the browser must reach.
        assert "http://" not in html, path
        assert "https://" not in html, path


async def test_every_asset_a_docs_page_loads_is_served(client: httpx.AsyncClient) -> None:
    seen: set[str] = set()
    for path in ("/docs", "/redoc"):
        for asset in _ASSET.findall(await _page(client, path)):
            if asset.startswith("/") and not asset.startswith("/openapi.json"):
                seen.add(asset)
    assert {
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
        "/docs-assets/redoc.standalone.js",
    } <= seen
    for asset in seen:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 1000, asset
    # ReDoc's bundle as shipped draws its logo from a CDN; the app serves it without that.
    assert b"cdn.redoc.ly" not in (await client.get("/docs-assets/redoc.standalone.js")).content


async def test_docs_routes_are_not_in_the_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not {"/", "/docs", "/redoc", "/docs/oauth2-redirect"} & set(paths)
