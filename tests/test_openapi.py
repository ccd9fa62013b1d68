from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from app.users.schemas import DOMAIN_PATTERN, Domain

EXPECTED_RESPONSES = {
    ("get", "/health/live"): {"200"},
    ("get", "/health/ready"): {"200", "503"},
    ("post", "/auth/token"): {"200", "400", "401", "413", "422", "429", "503"},
    ("post", "/users"): {"201", "400", "409", "413", "422", "429", "503"},
    ("get", "/users"): {"200", "401", "403", "422", "503"},
    ("get", "/users/me"): {"200", "401", "503"},
    ("get", "/users/{user_id}"): {"200", "401", "404", "422", "503"},
    ("patch", "/users/{user_id}"): {"200", "400", "401", "403", "404", "409", "413", "422", "503"},
    ("delete", "/users/{user_id}"): {"200", "401", "403", "404", "422", "503"},
    ("get", "/users/{user_id}/posts"): {"200", "401", "404", "422", "503"},
    ("get", "/users/by-slug/{slug}"): {"200", "401", "404", "422", "503"},
    ("post", "/posts"): {"201", "400", "401", "413", "422", "503"},
    ("get", "/posts"): {"200", "422", "503"},
    ("get", "/posts/{post_id}"): {"200", "404", "422", "503"},
    ("patch", "/posts/{post_id}"): {"200", "400", "401", "403", "404", "413", "422", "503"},
    ("delete", "/posts/{post_id}"): {"200", "401", "403", "404", "422", "503"},
    ("post", "/posts/{post_id}/views"): {"200", "404", "422", "503"},
    ("post", "/posts/{post_id}/comments"): {"201", "400", "401", "404", "413", "422", "503"},
    ("get", "/posts/{post_id}/comments"): {"200", "404", "422", "503"},
    ("patch", "/comments/{comment_id}"): {"200", "400", "401", "403", "404", "413", "422", "503"},
    ("delete", "/comments/{comment_id}"): {"200", "401", "403", "404", "422", "503"},
}


async def _spec(client: httpx.AsyncClient) -> dict[str, Any]:
    spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    return spec


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }


async def test_every_route_documents_the_responses_it_gives(client: httpx.AsyncClient) -> None:
    spec = await _spec(client)
    documented = {key: set(operation["responses"]) for key, operation in _operations(spec).items()}
    assert documented == EXPECTED_RESPONSES
    for (method, path), codes in EXPECTED_RESPONSES.items():
        for code in codes - {"200", "201"}:
            content = spec["paths"][path][method]["responses"][code]["content"]["application/json"]
            assert "$ref" in content["schema"], (method, path, code)


async def test_every_error_body_is_documented_with_its_code(client: httpx.AsyncClient) -> None:
    spec = await _spec(client)
    schemas = spec["components"]["schemas"]
    for (method, path), operation in _operations(spec).items():
        for status, response in operation["responses"].items():
            if status in ("200", "201") or path == "/health/ready":
                continue
            name = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            expected = "ValidationErrorDetail" if status == "422" else "ErrorDetail"
            assert name == expected, (method, path, status)
            assert set(schemas[name]["required"]) == {"detail", "code"}
    assert "HTTPValidationError" not in schemas


async def test_a_422_may_carry_field_errors_or_one_sentence(client: httpx.AsyncClient) -> None:
    schemas = (await _spec(client))["components"]["schemas"]
    detail = schemas["ValidationErrorDetail"]["properties"]["detail"]["anyOf"]
    assert {"type": "string"} in detail
    assert {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}} in detail
    assert set(schemas["FieldError"]["required"]) == {"type", "loc", "msg"}
    # And what a bad cursor gets matches it: a sentence.
    response = await client.get("/posts", params={"cursor": "forged"})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)
    assert response.json()["code"] == "invalid_value"


async def test_patch_fields_may_be_omitted_but_are_not_nullable_except_bio(client: httpx.AsyncClient) -> None:
    schemas = (await _spec(client))["components"]["schemas"]
    for name in ("UserUpdate", "PostUpdate", "CommentUpdate"):
        for field, schema in schemas[name]["properties"].items():
            nullable = {"type": "null"} in schema.get("anyOf", [])
            assert nullable == (field == "bio"), (name, field)
            assert "default" not in schema or field == "bio", (name, field)
    assert "required" not in schemas["UserUpdate"]
    assert "required" not in schemas["PostUpdate"]


async def test_text_inputs_document_the_text_rule(client: httpx.AsyncClient) -> None:
    schemas = (await _spec(client))["components"]["schemas"]
    for name, field in [
        ("UserCreate", "password"),
        ("UserCreate", "email"),
        ("PostCreate", "content"),
        ("CommentCreate", "body"),
    ]:
        assert schemas[name]["properties"][field]["pattern"] == r"^[^\x00]*$", (name, field)
    for name, field in [("UserCreate", "name"), ("PostCreate", "title")]:
        pattern = schemas[name]["properties"][field]["pattern"]
        assert re.search(pattern, "x"), pattern
        assert not re.search(pattern, " \t "), pattern
        assert not re.search(pattern, "a\x00"), pattern


async def test_the_email_domain_filter_documents_the_pattern_it_applies(client: httpx.AsyncClient) -> None:
    spec = await _spec(client)
    parameters = {parameter["name"]: parameter for parameter in spec["paths"]["/users"]["get"]["parameters"]}
    items = parameters["email_domain"]["schema"]["items"]
    assert items["pattern"] == DOMAIN_PATTERN
    adapter: TypeAdapter[str] = TypeAdapter(Domain)
    for value in [
        "example.com",
        "@Example.COM",
        "a-b.c0",
        "x",
        "not a domain",
        "",
        "a..b",
        "-a.com",
        "a-.com",
        "é.com",
        "a_b.com",
        "example.com\n",
        "a" * 254,
        "@" + "a" * 253,
        "a" * 255,
    ]:
        try:
            adapter.validate_python(value)
            accepted = True
        except ValidationError:
            accepted = False
        # A JSON schema's `$` is the end of the text; Python's also matches before a final newline.
        ecma_pattern = items["pattern"].removesuffix("$") + r"\Z"
        documented = re.search(ecma_pattern, value) is not None and len(value) <= items["maxLength"]
        assert accepted == documented, value


async def test_optional_sign_in_is_documented_as_optional(client: httpx.AsyncClient) -> None:
    operations = _operations(await _spec(client))
    bearer: dict[str, list[str]] = {"OAuth2PasswordBearer": []}
    for key in [("get", "/users"), ("get", "/users/{user_id}"), ("get", "/users/by-slug/{slug}")]:
        assert operations[key]["security"] == [bearer, {}], key
    for key in [("get", "/users/me"), ("post", "/posts"), ("patch", "/users/{user_id}")]:
        assert operations[key]["security"] == [bearer], key


async def test_creating_routes_link_to_what_they_create(client: httpx.AsyncClient) -> None:
    operations = _operations(await _spec(client))
    operation_ids = {operation["operationId"]: key for key, operation in operations.items()}
    expected = {
        ("post", "/users"): {
            ("get", "/users/{user_id}"),
            ("patch", "/users/{user_id}"),
            ("delete", "/users/{user_id}"),
        },
        ("post", "/posts"): {
            ("get", "/posts/{post_id}"),
            ("patch", "/posts/{post_id}"),
            ("delete", "/posts/{post_id}"),
        },
        ("post", "/posts/{post_id}/comments"): {
            ("patch", "/comments/{comment_id}"),
            ("delete", "/comments/{comment_id}"),
        },
    }
    for source, targets in expected.items():
        links = operations[source]["responses"]["201"]["links"]
        linked = {operation_ids[link["operationId"]] for link in links.values()}
        assert targets <= linked, source


@pytest.mark.parametrize(
    ("path", "documented"),
    [
        ("/users/{user_id}", "/users/1"),
        ("/posts/{post_id}", "/posts/1"),
        ("/comments/{comment_id}", "/comments/1"),
        ("/posts", "/posts"),
        ("/posts/{post_id}/comments", "/posts/1/comments"),
    ],
)
async def test_a_405_allows_exactly_the_documented_methods(
    client: httpx.AsyncClient, path: str, documented: str
) -> None:
    methods = {method.upper() for method in (await _spec(client))["paths"][path]}
    response = await client.request("PUT", documented)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert set(response.headers["allow"].split(", ")) == methods


async def test_schemas_never_expose_password_material(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert "email" not in schemas["UserPublic"]["properties"]
    assert "email" in schemas["UserPrivate"]["required"]
    for name in ("UserPublic", "UserPrivate", "Token"):
        assert "password" not in json.dumps(schemas[name])
    assert (await client.get("/docs")).status_code == 200
