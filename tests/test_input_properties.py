"""Property: whatever text or JSON a client sends to any write or query parameter, the answer is
never a 5xx, and text holding U+0000 is never accepted (issue 12, item 1). On every backend.

The values are what a fuzzer sends: any Unicode (NUL, lone surrogates, astral characters),
non-finite and out-of-range numbers, deep and odd JSON, bytes that are not UTF-8.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Account

# Every code point, surrogates included: the categories default leaves out Cs.
text = st.text(st.characters(codec=None, categories=None), max_size=40)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**400), 2**31, 2**63]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8
)

REGISTRATION_FIELDS = ["email", "name", "password", "bio"]
WRITE_FIELDS = ["title", "content", "body", "name", "bio", "email", "password", "is_active", "is_admin"]

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    # One client and one account for all examples: the property holds whatever rows earlier
    # examples left behind.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _dumps(payload: Any) -> bytes:
    # As a careless or hostile client sends it: NaN and Infinity as bare words, lone surrogates
    # as \u escapes -- both outside strict JSON, both accepted by Python's parser.
    return json.dumps(payload, allow_nan=True).encode()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    return False


def _check(response: httpx.Response, sent: Any) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, sent, response.text)
    if response.is_redirect:  # "/users/x/" is redirected to "/users/x": nothing was read
        return
    body = response.json()
    assert "code" in body or response.is_success, body
    if _has_nul(sent):
        assert not response.is_success, (response.request.url, sent, body)


@PROPERTY
@given(
    values=st.fixed_dictionaries({}, optional=dict.fromkeys(REGISTRATION_FIELDS, json_values)),
    extra=st.dictionaries(text, json_values, max_size=2),
)
async def test_registration_never_fails_on_input(client: httpx.AsyncClient, values: dict[str, Any], extra: Any) -> None:
    payload = {**extra, **values}
    response = await client.post("/users", content=_dumps(payload), headers={"Content-Type": "application/json"})
    _check(response, payload)


@PROPERTY
@given(
    target=st.sampled_from(["/posts", "post", "comments", "comment", "/users/{me}"]),
    values=st.dictionaries(
        st.sampled_from(["title", "content", "body", "name", "bio", "email", "is_admin"]), json_values
    ),
)
async def test_writes_never_fail_on_input(
    client: httpx.AsyncClient, alice: Account, target: str, values: dict[str, Any]
) -> None:
    post = await client.post("/posts", json={"title": "t", "content": "c"}, headers=alice.headers)
    post_id = post.json()["id"]
    comment = await client.post(f"/posts/{post_id}/comments", json={"body": "b"}, headers=alice.headers)
    method, path = {
        "/posts": ("POST", "/posts"),
        "post": ("PATCH", f"/posts/{post_id}"),
        "comments": ("POST", f"/posts/{post_id}/comments"),
        "comment": ("PATCH", f"/comments/{comment.json()['id']}"),
        "/users/{me}": ("PATCH", f"/users/{alice.id}"),
    }[target]
    headers = {"Content-Type": "application/json", **alice.headers}
    response = await client.request(method, path, content=_dumps(values), headers=headers)
    _check(response, values)


@PROPERTY
@given(username=text, password=text)
async def test_login_never_fails_on_input(client: httpx.AsyncClient, username: str, password: str) -> None:
    form = f"username={_quoted(username)}&password={_quoted(password)}"
    response = await client.post(
        "/auth/token", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    _check(response, [username, password])


QUERY_PARAMETERS = ["q", "cursor", "skip", "limit", "order_by", "order", "include", "email_domain", "is_admin"]


@PROPERTY
@given(
    path=st.sampled_from(["/users", "/posts", "/users/{me}/posts", "/posts/{post}/comments"]),
    params=st.lists(st.tuples(st.sampled_from(QUERY_PARAMETERS), text), max_size=4),
)
async def test_queries_never_fail_on_input(
    client: httpx.AsyncClient, alice: Account, path: str, params: list[tuple[str, str]]
) -> None:
    post = await client.post("/posts", json={"title": "t", "content": "c"}, headers=alice.headers)
    url = path.format(me=alice.id, post=post.json()["id"])
    query = "&".join(f"{name}={_quoted(value)}" for name, value in params)
    for headers in ({}, alice.headers):
        _check(await client.get(f"{url}?{query}", headers=headers), [value for _, value in params])


@PROPERTY
@given(segment=text.filter(lambda value: value not in ("", ".", "..")))
async def test_path_parameters_never_fail_on_input(client: httpx.AsyncClient, segment: str) -> None:
    for template in ("/users/by-slug/{}", "/users/{}", "/posts/{}", "/posts/{}/comments", "/comments/{}"):
        _check(await client.get(template.format(_quoted(segment))), segment)


def _quoted(value: str) -> str:
    # Percent-encoded as UTF-8; a lone surrogate goes out as the bytes it would be, which are
    # not UTF-8 at all -- what a broken or hostile client sends.
    return quote(value.encode("utf-8", "surrogatepass"), safe="")
