"""Do two servers answer the same GETs with the same JSON? Run before timing them side by side.

    python -m bench.baseline.compare http://127.0.0.1:8101 http://127.0.0.1:8102 [http://...]

compares the app (the first base URL, which also supplies the ids and the deep cursor) with each
other server on `sample_requests`. From code: `await compare(base_a, base_b, requests)`.
Both servers must sign with the same SECRET_KEY, or cursors from one are rejected by the other.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx

# Differences listed per request before the rest are summarised as a count.
_MAX_DIFFERENCES = 5


def differences(a: Any, b: Any, path: str = "$") -> list[str]:
    """Where two parsed JSON documents differ, as `path: a != b` lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{key}: only in {'a' if key in a else 'b'}" for key in sorted(a.keys() ^ b.keys())]
        for key in a.keys() & b.keys():
            found += differences(a[key], b[key], f"{path}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = [] if len(a) == len(b) else [f"{path}: {len(a)} items != {len(b)} items"]
        for index, (item_a, item_b) in enumerate(zip(a, b, strict=False)):
            found += differences(item_a, item_b, f"{path}[{index}]")
        return found
    # type() too: JSON's 1 and 1.0, or true and 1, are different answers.
    if type(a) is not type(b) or a != b:
        return [f"{path}: {a!r} != {b!r}"]
    return []


async def compare(base_a: str, base_b: str, requests: list[str]) -> list[str]:
    """GET each request (a path with its query string) from both servers; one line per mismatch.

    A mismatch is a different status, a body that is not JSON, or a JSON difference (objects are
    compared parsed, so key order and whitespace do not count).
    """
    mismatches: list[str] = []
    async with httpx.AsyncClient(timeout=30.0) as client:
        for request in requests:
            response_a, response_b = await asyncio.gather(client.get(base_a + request), client.get(base_b + request))
            if response_a.status_code != response_b.status_code:
                mismatches.append(f"GET {request}: status {response_a.status_code} != {response_b.status_code}")
                continue
            try:
                body_a, body_b = response_a.json(), response_b.json()
            except ValueError:
                mismatches.append(f"GET {request}: a body is not JSON")
                continue
            found = differences(body_a, body_b)
            if len(found) > _MAX_DIFFERENCES:
                found = [*found[:_MAX_DIFFERENCES], f"... and {len(found) - _MAX_DIFFERENCES} more"]
            mismatches += [f"GET {request}: {line}" for line in found]
    return mismatches


async def sample_requests(base: str, *, deep: int = 10_000, include_total: bool = True) -> list[str]:
    """The endpoints the benchmark times, with ids and a deep cursor taken from the server at `base`.

    `include_total` adds `include=total` to every list request; without it `total` is null.
    """
    total = "&include=total" if include_total else ""
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
        users = (await client.get("/users", params={"limit": 1})).raise_for_status().json()
        user_id = users["items"][0]["id"]
        page = (await client.get("/posts", params={"limit": 1})).raise_for_status().json()
        post_id = page["items"][0]["id"]
        commented = (await client.get("/posts", params={"order_by": "id", "order": "asc", "limit": 1})).json()
        first_post_id = commented["items"][0]["id"]
        deep_page = (await client.get("/posts", params={"skip": deep, "limit": 20})).raise_for_status().json()
    requests = [
        f"/users/{user_id}",
        "/users/2147483647",
        f"/posts?limit=20{total}",
        f"/posts?skip={deep}&limit=20{total}",
        f"/posts?limit=20&order_by=views{total}",
        f"/posts?limit=20&order_by=title&order=asc&q=index{total}",
        f"/posts?limit=20&author_id={user_id}{total}",
        f"/posts/{post_id}/comments?limit=20{total}",
        f"/posts/{first_post_id}/comments?limit=2{total}",
        "/posts/2147483647/comments",
        f"/users?include=posts{total}",
        f"/users?include=posts&limit=50&skip=100{total}",
    ]
    if deep_page["next_cursor"] is not None:
        requests.append(f"/posts?limit=20&cursor={deep_page['next_cursor']}{total}")
    return requests


async def _main(base_a: str, others: list[str]) -> int:
    requests = await sample_requests(base_a)
    failed = 0
    for base_b in others:
        mismatches = await compare(base_a, base_b, requests)
        print(f"{base_a} vs {base_b}: {len(requests)} requests, {len(mismatches)} mismatches")
        for line in mismatches:
            print(f"  {line}")
        failed += bool(mismatches)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    raise SystemExit(asyncio.run(_main(sys.argv[1], sys.argv[2:])))
