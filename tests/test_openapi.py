from __future__ import annotations

import json

import httpx

EXPECTED_RESPONSES = {
    ("get", "/health/live"): {"200"},
    ("get", "/health/ready"): {"200", "503"},
    ("post", "/auth/token"): {"200", "401", "422", "503"},
    ("post", "/users"): {"201", "409", "422", "503"},
    ("get", "/users"): {"200", "401", "403", "422", "503"},
    ("get", "/users/me"): {"200", "401", "503"},
    ("get", "/users/{user_id}"): {"200", "401", "404", "422", "503"},
    ("patch", "/users/{user_id}"): {"200", "401", "403", "404", "409", "422", "503"},
    ("delete", "/users/{user_id}"): {"200", "401", "403", "404", "422", "503"},
    ("get", "/users/{user_id}/posts"): {"200", "401", "404", "422", "503"},
    ("get", "/users/by-slug/{slug}"): {"200", "401", "404", "422", "503"},
    ("post", "/posts"): {"201", "401", "422", "503"},
    ("get", "/posts"): {"200", "422", "503"},
    ("get", "/posts/{post_id}"): {"200", "404", "422", "503"},
    ("patch", "/posts/{post_id}"): {"200", "401", "403", "404", "422", "503"},
    ("delete", "/posts/{post_id}"): {"200", "401", "403", "404", "422", "503"},
    ("post", "/posts/{post_id}/views"): {"200", "404", "422", "503"},
    ("post", "/posts/{post_id}/comments"): {"201", "401", "404", "422", "503"},
    ("get", "/posts/{post_id}/comments"): {"200", "404", "422", "503"},
    ("patch", "/comments/{comment_id}"): {"200", "401", "403", "404", "422", "503"},
    ("delete", "/comments/{comment_id}"): {"200", "401", "403", "404", "422", "503"},
}


async def test_every_route_documents_the_responses_it_gives(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    documented = {
        (method, path): set(operation["responses"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    assert documented == EXPECTED_RESPONSES
    for (method, path), codes in EXPECTED_RESPONSES.items():
        for code in codes - {"200", "201", "422"}:
            content = spec["paths"][path][method]["responses"][code]["content"]["application/json"]
            assert "$ref" in content["schema"], (method, path, code)


async def test_schemas_never_expose_password_material(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert "email" not in schemas["UserPublic"]["properties"]
    assert "email" in schemas["UserPrivate"]["required"]
    for name in ("UserPublic", "UserPrivate", "Token"):
        assert "password" not in json.dumps(schemas[name])
    assert (await client.get("/docs")).status_code == 200
