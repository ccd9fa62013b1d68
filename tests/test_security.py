from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from argon2 import extract_parameters

from app.security import (
    create_access_token,
    decode_access_token,
    hash_password,
    needs_rehash,
    verify_password,
)

SECRET = "unit-test-secret-unit-test-secret-0123"


async def test_passwords_are_hashed_with_argon2id_at_owasp_minimum_or_more() -> None:
    password_hash = await hash_password("correct horse")
    assert password_hash.startswith("$argon2id$")
    parameters = extract_parameters(password_hash)
    assert parameters.memory_cost >= 19 * 1024
    assert parameters.time_cost >= 2
    assert parameters.type.name == "ID"
    assert not needs_rehash(password_hash)


async def test_verify_accepts_only_the_right_password() -> None:
    password_hash = await hash_password("correct horse")
    assert await verify_password(password_hash, "correct horse")
    assert not await verify_password(password_hash, "correct horsE")
    assert not await verify_password(None, "correct horse")
    assert not await verify_password("not-a-hash", "correct horse")


def test_token_round_trip_and_expiry() -> None:
    token = create_access_token(user_id=42, password_hash="h", secret=SECRET, lifetime=timedelta(minutes=5))
    assert token.expires_in == 300
    claims = decode_access_token(token.token, secret=SECRET)
    assert claims is not None
    assert claims.user_id == 42
    expired = create_access_token(user_id=42, password_hash="h", secret=SECRET, lifetime=timedelta(seconds=-1))
    assert decode_access_token(expired.token, secret=SECRET) is None


def test_forged_tokens_are_rejected() -> None:
    token = create_access_token(user_id=1, password_hash="h", secret=SECRET, lifetime=timedelta(minutes=5)).token
    assert decode_access_token(token, secret=SECRET + "x") is None
    now = datetime.now(UTC)
    claims = {"sub": "1", "iat": now, "exp": now + timedelta(minutes=5), "pwd": "x"}
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert decode_access_token(unsigned, secret=SECRET) is None
    assert decode_access_token("garbage", secret=SECRET) is None
    missing_fingerprint = jwt.encode({"sub": "1", "iat": now, "exp": now + timedelta(minutes=5)}, SECRET)
    assert decode_access_token(missing_fingerprint, secret=SECRET) is None
