"""What each kind of setting value means: database and storage URLs, rate limits, networks.

Parsers `app.config` validates with; each raises ValueError with a message for the operator.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

import limits
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# The async driver each accepted URL scheme is mapped to. People paste URLs from their hosting
# provider (`postgres://...`) or from a sync project (`mysql+pymysql://...`): the driver part is
# ours to choose, the rest of the URL is kept as given.
_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
    "sqlite": "sqlite+aiosqlite",
}


def to_async_url(raw: str) -> URL:
    """Map a pasted database URL onto the async driver the app uses."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError("not a database URL (expected e.g. postgresql://user@host/db)") from None
    backend = url.drivername.split("+", 1)[0]
    if backend not in _ASYNC_DRIVERS:
        supported = ", ".join(sorted(_ASYNC_DRIVERS))
        raise ValueError(f"unsupported database {backend!r} (supported: {supported})")
    url = url.set(drivername=_ASYNC_DRIVERS[backend])
    if backend == "sqlite":
        if url.database in (None, "", ":memory:") or "mode=memory" in str(url):
            # Every pooled connection would see its own empty database.
            raise ValueError("in-memory SQLite is not supported; use a file, e.g. sqlite:///./app.db")
        return url
    if url.get_backend_name() == "postgresql" and "sslmode" in url.query:
        # libpq spells it sslmode, asyncpg spells it ssl; same values.
        query = dict(url.query)
        query["ssl"] = query.pop("sslmode")
        url = url.set(query=query)
    if url.get_backend_name() == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


# The `limits` storage (its async variant) each accepted RATE_LIMIT_STORAGE_URL scheme is served by.
_RATE_LIMIT_STORAGES = {
    "memory": "async+memory",
    "redis": "async+redis",
    "rediss": "async+rediss",
    "redis+unix": "async+redis+unix",
    "redis+sentinel": "async+redis+sentinel",
    "redis+cluster": "async+redis+cluster",
}


def to_async_storage_url(raw: str) -> str:
    """Map a rate-limit storage URL (`memory://`, `redis://host:6379/0`, ...) onto the async storage of `limits`."""
    scheme, separator, rest = raw.strip().partition("://")
    scheme = scheme.lower().removeprefix("async+")
    if not separator:
        raise ValueError("not a storage URL (expected memory:// or redis://host:port/db)")
    if scheme not in _RATE_LIMIT_STORAGES:
        supported = ", ".join(f"{name}://" for name in _RATE_LIMIT_STORAGES)
        raise ValueError(f"unsupported storage {scheme!r} (supported: {supported})")
    if scheme != "memory" and not rest.strip("/"):
        raise ValueError(f"{scheme}:// needs a location, e.g. redis://127.0.0.1:6379/0")
    return f"{_RATE_LIMIT_STORAGES[scheme]}://{rest}"


def check_rate_limit(value: str) -> None:
    """One limit in the `limits` syntax ("10/15 minutes", "20 per hour"), of at least one attempt."""
    try:
        items = limits.parse_many(value.strip())
    except ValueError:
        items = []
    if len(items) != 1:
        raise ValueError(f"expected one limit such as '10/15 minutes' or '20/hour', got {value!r}")
    if items[0].amount < 1:
        raise ValueError(f"{value!r} allows nothing; to turn the limits off, set RATE_LIMIT_ENABLED=false")


def parse_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """`10.0.0.0/8, 192.168.1.7` as networks (an address is a network of one)."""
    networks = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(ip_network(item))
        except ValueError as exc:
            if "host bits set" in str(exc):
                raise ValueError(f"{exc} (the network is {ip_network(item, strict=False)})") from None
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def parse_replica_urls(value: str) -> tuple[str, ...]:
    """`postgresql://replica1/db, postgresql://replica2/db`: each a PostgreSQL URL, in the given order."""
    urls = tuple(filter(None, (part.strip() for part in value.split(","))))
    for url in urls:
        if to_async_url(url).get_backend_name() != "postgresql":
            raise ValueError(f"{make_url(url).render_as_string()}: replicas are PostgreSQL streaming replicas")
    return urls
