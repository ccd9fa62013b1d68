"""Input an attacker or a fuzzer sends: each is a clear 4xx with a code, never a 500.

D1 (U+0000), D2 (non-finite numbers, lone surrogates), D3 (body limits) and the HTTP errors the
framework raises itself (404, 405, 400), on every backend.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.errors import ERROR_CODES, AppError
from app.main import create_app
from tests.conftest import Account, make_settings, serving
from tests.databases import ScratchDatabase

NUL = "\x00"


def _field_errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    errors: list[dict[str, Any]] = body["detail"]
    return errors


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/posts", {"q": NUL}),
        ("/users", {"q": f"a{NUL}b"}),
        ("/posts", {"cursor": NUL}),
        ("/users/by-slug/%00", {}),
    ],
)
async def test_nul_in_a_query_or_path_is_a_422_anonymously(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    errors = _field_errors(await client.get(path, params=params))
    assert errors[0]["type"] == "text_nul"


async def test_nul_in_any_text_field_is_a_422_and_nothing_is_written(client: httpx.AsyncClient, alice: Account) -> None:
    for payload in (
        {"email": "nul@example.com", "name": f"Nul{NUL}", "password": "password123"},
        {"email": "nul@example.com", "name": "Nul", "password": "password123", "bio": NUL},
        {"email": f"nul{NUL}@example.com", "name": "Nul", "password": "password123"},
        {"email": "nul@example.com", "name": "Nul", "password": f"password{NUL}123"},
    ):
        errors = _field_errors(await client.post("/users", json=payload))
        assert errors[0]["type"] == "text_nul", errors
    assert (await client.get("/users", params={"q": "Nul"})).json()["items"] == []

    for payload in ({"title": NUL, "content": "x"}, {"title": "x", "content": f"a{NUL}"}):
        _field_errors(await client.post("/posts", json=payload, headers=alice.headers))
    post = (await client.post("/posts", json={"title": "t", "content": "c"}, headers=alice.headers)).json()
    _field_errors(await client.patch(f"/posts/{post['id']}", json={"title": NUL}, headers=alice.headers))
    _field_errors(await client.post(f"/posts/{post['id']}/comments", json={"body": NUL}, headers=alice.headers))
    _field_errors(await client.patch(f"/users/{alice.id}", json={"name": NUL}, headers=alice.headers))
    assert (await client.get(f"/posts/{post['id']}")).json()["title"] == "t"


async def test_nul_in_a_login_is_a_422(client: httpx.AsyncClient) -> None:
    for form in (
        {"username": f"a{NUL}@example.com", "password": "password123"},
        {"username": "a@x.io", "password": NUL},
    ):
        errors = _field_errors(await client.post("/auth/token", data=form))
        assert errors[0]["type"] == "text_nul"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"', '"a\\udfff b"'])
async def test_non_finite_numbers_and_lone_surrogates_are_a_422(client: httpx.AsyncClient, literal: str) -> None:
    rest = '"password": "password123"'
    for body in (
        f'{{"email": {literal}, "name": "X", {rest}}}',
        f'{{"email": "x@example.com", "name": {literal}, {rest}}}',
        f'{{"email": "x@example.com", "name": "X", {rest}, "bio": {literal}}}',
        f'{{"email": "x@example.com", "name": "X", {rest}, "extra": {literal}}}',
    ):
        _field_errors(await client.post("/users", content=body, headers={"Content-Type": "application/json"}))
    assert (await client.get("/users")).json()["items"] == []


async def test_a_lone_surrogate_in_a_key_or_a_whole_body_still_renders(client: httpx.AsyncClient) -> None:
    for body in ('{"\\ud800": NaN}', "NaN", '"\\ud800"', "[1e999]", '{"title": [NaN, {"\\udc00": -Infinity}]}'):
        response = await client.post("/users", content=body, headers={"Content-Type": "application/json"})
        _field_errors(response)


async def test_a_body_that_is_not_utf8_is_a_400_with_a_code(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/users", content=b'{"name": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


async def test_no_such_route_and_wrong_method_answer_with_codes(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"

    wrong = await client.put("/users/1")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    # GET, PATCH and DELETE /users/{id} are three routes: Allow names them all.
    assert wrong.headers["allow"] == "DELETE, GET, PATCH"
    assert (await client.delete("/posts")).headers["allow"] == "GET, POST"


@pytest.fixture
async def small_limit_client(backend: ScratchDatabase) -> AsyncIterator[httpx.AsyncClient]:
    settings: Settings = make_settings(backend, max_body_bytes=2048)
    async with serving(create_app(settings)) as client:
        yield client


async def test_a_declared_body_over_the_limit_is_a_413_before_anything_runs(
    small_limit_client: httpx.AsyncClient,
) -> None:
    # Anonymous, to a route that needs a token: the size is checked first.
    response = await small_limit_client.post(
        "/posts", content=b"x" * 4096, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert "2048" in response.json()["detail"]


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(small_limit_client: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1024
            yield b" " * 1024

    response = await small_limit_client.post("/users", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert sent < 10 * 1024  # read no further than the chunk that crossed the limit


async def test_a_body_within_the_limit_is_served(small_limit_client: httpx.AsyncClient) -> None:
    payload = {"email": "small@example.com", "name": "Small", "password": "password123", "bio": "b" * 1500}
    assert (await small_limit_client.post("/users", json=payload)).status_code == 201


def _subclasses(cls: type[AppError]) -> list[type[AppError]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def test_every_error_code_is_listed_and_documented() -> None:
    # Every domain's errors are imported with app.main.
    codes = {error.code for error in _subclasses(AppError)}
    assert codes <= set(ERROR_CODES), codes - set(ERROR_CODES)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = set(re.findall(r"^\| `([a-z_]+)` \| (?:\d{3}|other) \|", readme, flags=re.MULTILINE))
    assert table == set(ERROR_CODES)
