"""The contract: what `/openapi.json` says against what the app does, checked by schemathesis.

Every operation is fuzzed (its examples, coverage and fuzzing phases) under every built-in check;
then the stateful phase follows the OpenAPI links (`app/openapi.py`): `POST /users` to that user's
routes, `POST /posts` to the post's, `POST /posts/{id}/comments` to the comment's. Both run as each
of three identities: anonymous, a signed-in user and an admin. On SQLite only: the document is the
same on every backend, and how each backend behaves is the rest of the suite's job.

The identities survive the fuzzer: a `DELETE /users/{id}` or a password change can hit the test's
own account, and an admin can demote or deactivate itself, so after any response that may mean
that, the identity is checked and, if need be, re-promoted or signed up again.

`CONTRACT_SEED`, `CONTRACT_EXAMPLES` and `CONTRACT_SCENARIOS` explore further than the fixed,
modest defaults the normal test command runs with.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from fastapi import FastAPI
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.engine.recorder import ScenarioRecorder
from schemathesis.generation.stateful.state_machine import DEFAULT_STATE_MACHINE_SETTINGS
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import ensure_resource_availability, positive_data_acceptance, use_after_free

from app.main import app as served_app
from app.main import create_app
from app.models import Base
from tests.conftest import PASSWORD, make_settings
from tests.databases import ScratchDatabase

pytestmark = pytest.mark.backends("sqlite")

Case = schemathesis.Case[Any]

SEED = int(os.environ.get("CONTRACT_SEED", "20260101"))
MAX_EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "20"))
STATEFUL_SCENARIOS = int(os.environ.get("CONTRACT_SCENARIOS", "25"))
STATEFUL_STEPS = 8
STATEFUL_SUITES = 5

IDENTITIES = ("anonymous", "user", "admin")

# A fuzzer signs up and logs in far more often than a person: the throttles are not what this test
# is about (tests/auth has them).
GENEROUS_LIMITS = {
    "rate_limit_login_account": "100000/minute",
    "rate_limit_login_address": "100000/minute",
    "rate_limit_signup_address": "100000/minute",
}

CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
    # How fast cases are generated depends on the machine's load, not on the contract.
    "suppress-health-check": ["too_slow"],
    "operations": [
        {
            # `/users/me` also matches the template `/users/{user_id}`, so the router sends PATCH and
            # DELETE on it to those routes (a 422: "me" is no id) instead of answering 405, and the
            # 405 for other methods lists them in Allow. A routing matter of app/users/router.py
            # (reported); both checks stay on for every other path.
            "include-path": "/users/me",
            "checks": {"unsupported_method": {"enabled": False}, "allow_header_conformance": {"enabled": False}},
        },
        {
            # The profile is also `/users/{user_id}`: deleting or deactivating it there makes this a
            # 404, and schemathesis cannot know the two paths name one resource.
            "include-path": "/users/by-slug/{slug}",
            "checks": {"ensure_resource_availability": {"enabled": False}},
        },
    ],
}

_emails = itertools.count(1)


def not_applicable(case: Case, response: schemathesis.Response, identity: Identity | None) -> list[CheckFunction]:
    """Checks whose premise does not hold for this exchange, each as narrowly as it can be said."""
    query = case.query if isinstance(case.query, dict) else {}
    body = case.body if isinstance(case.body, dict) else {}
    excluded: list[CheckFunction] = []
    if query.get("cursor") is not None:
        # A cursor is opaque and signed by the server: no string a generator makes up is one the API
        # issued, so a schema-valid cursor is still a 422 (`invalid_value`), as documented. So is
        # one sent with `skip` (they exclude each other, which a schema cannot say).
        excluded.append(positive_data_acceptance)
    email = body.get("email")
    if isinstance(email, str) and _at_special_use_domain(email):
        # `format: email` admits `x@host.test`; email-validator refuses RFC 6761's special-use
        # domains (test, invalid, localhost, ...), which no JSON schema can list.
        excluded.append(positive_data_acceptance)
    ids = {value for value in (case.path_parameters or {}).values() if isinstance(value, int)}
    if identity is not None and identity.reissued & ids:
        # This test signed its identity up again after the fuzzer deleted it, and SQLite hands a
        # new row the id of the newest one deleted: the "deleted" user is our new account.
        excluded.append(use_after_free)
    return excluded


def removed_by_cascade(recorder: ScenarioRecorder, case: Case) -> bool:
    """Whether what this case addresses went with a user or post the scenario deleted.

    Deleting a user deletes their posts and comments, and deleting a post its comments (README:
    cascades); schemathesis counts a DELETE against its own path only, so it would call the 404
    that follows, on `/posts/{id}` or `/comments/{id}`, a created resource gone missing.
    """
    parent = recorder.find_parent(case_id=case.id)
    created = recorder.find_response(case_id=parent.id) if parent is not None else None
    if created is None or created.status_code != 201:
        return False
    deleted: dict[str, set[Any]] = {"/users/{user_id}": set(), "/posts/{post_id}": set()}
    authors: dict[Any, Any] = {}
    for prior in recorder.find_all_cases():
        response = recorder.find_response(case_id=prior.id)
        if response is None or not 200 <= response.status_code < 300:
            continue
        if prior.method == "DELETE" and prior.path in deleted:
            deleted[prior.path].update((prior.path_parameters or {}).values())
        elif prior.method == "POST" and prior.path == "/posts" and response.status_code == 201:
            post = response.json()
            authors[post["id"]] = post["author_id"]
    body = created.json()
    post_id = body.get("post_id")
    return (
        body.get("author_id") in deleted["/users/{user_id}"]
        or post_id in deleted["/posts/{post_id}"]
        or (post_id in authors and authors[post_id] in deleted["/users/{user_id}"])
    )


def _at_special_use_domain(address: str) -> bool:
    domain = address.rpartition("@")[2].rstrip(".").lower()
    return any(domain == name or domain.endswith(f".{name}") for name in SPECIAL_USE_DOMAIN_NAMES)


@dataclass
class Identity:
    """An account the test acts as, checked again whenever a response suggests it was changed."""

    app: FastAPI
    database_path: str
    name: str
    admin: bool
    user_id: int | None = None
    access_token: str | None = None
    stale: bool = True
    # Ids of the accounts signed up to replace a deleted one.
    reissued: set[int] = field(default_factory=set)

    def headers(self) -> dict[str, str]:
        if self.stale or self.access_token is None:
            self._repair()
            self.stale = False
        return {"Authorization": f"Bearer {self.access_token}"}

    def noticed(self, case: Case, response: schemathesis.Response) -> None:
        """Mark the identity for a check when the response may mean its account changed."""
        try:
            code = response.json().get("code")
        except (ValueError, AttributeError):
            code = None
        revoked = response.status_code == 401 and code == "invalid_token"
        # Nothing is forbidden to an admin here: a 403 means it is one no longer.
        demoted = response.status_code == 403 and self.admin
        changed_an_account = case.method in ("PATCH", "DELETE") and case.path.startswith("/users/")
        if revoked or demoted or (changed_an_account and response.status_code < 300):
            self.stale = True

    def _repair(self) -> None:
        with asgi.get_client(self.app) as client:  # type: ignore[arg-type]
            if self.access_token is not None:
                me = client.get("/users/me", headers={"Authorization": f"Bearer {self.access_token}"})
                if me.status_code == 200:
                    if me.json()["is_admin"] != self.admin:
                        self._promote()
                    return
            email = f"contract-{self.name}-{next(_emails)}@example.com"
            profile = {"email": email, "name": f"Contract {self.name}", "password": PASSWORD}
            created = client.post("/users", json=profile)
            assert created.status_code == 201, created.text
            if self.user_id is not None:
                self.reissued.add(created.json()["id"])
            self.user_id = created.json()["id"]
            if self.admin:
                self._promote()
            login = client.post("/auth/token", data={"username": email, "password": PASSWORD})
            assert login.status_code == 200, login.text
            self.access_token = login.json()["access_token"]

    def _promote(self) -> None:
        # As tests/conftest.py's new_account(admin=True) does: there is no API for it, by design.
        with sqlite3.connect(self.database_path) as connection:
            connection.execute("UPDATE users SET is_admin = 1, is_active = 1 WHERE id = ?", (self.user_id,))


@pytest.fixture(scope="module")
def contract_app(backend: ScratchDatabase) -> FastAPI:
    # From empty tables, as every test starts: the ids the fuzzer meets do not depend on what ran before.
    assert backend.url.database is not None
    with sqlite3.connect(backend.url.database) as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(f"DELETE FROM {table.name}")  # noqa: S608 -- the app's own table names
    return create_app(make_settings(backend, **GENEROUS_LIMITS))


@pytest.fixture(scope="module")
def identities(contract_app: FastAPI, backend: ScratchDatabase) -> dict[str, Identity | None]:
    assert backend.url.database is not None
    return {
        name: None if name == "anonymous" else Identity(contract_app, backend.url.database, name, admin=name == "admin")
        for name in IDENTITIES
    }


@pytest.fixture(scope="module", params=IDENTITIES)
def identity(request: pytest.FixtureRequest, identities: dict[str, Identity | None]) -> Identity | None:
    return identities[request.param]


# The document the app serves; each test sends its requests to its own app, on the test database.
schema = schemathesis.openapi.from_dict(served_app.openapi(), config=schemathesis.Config.from_dict(CONFIG))


@schema.parametrize()
def test_every_operation_keeps_its_contract(case: Case, contract_app: FastAPI, identity: Identity | None) -> None:
    headers = identity.headers() if identity else {}
    response = case.call(app=contract_app, headers=headers)
    if identity:
        identity.noticed(case, response)
    case.validate_response(
        response,
        headers=headers,
        excluded_checks=not_applicable(case, response, identity),
        transport_kwargs={"app": contract_app, "headers": headers},
    )


def test_linked_operations_keep_their_contract(contract_app: FastAPI, identity: Identity | None) -> None:
    linked = schemathesis.openapi.from_asgi("/openapi.json", contract_app, config=schemathesis.Config.from_dict(CONFIG))
    # Collected, not raised: Hypothesis replays a failing scenario to report it, and the replay
    # meets data that has moved on, which it reports as flaky generation instead of the failure.
    failures: dict[str, str] = {}

    class Scenario(linked.as_state_machine()):  # type: ignore[misc]
        completed = 0

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": identity.headers() if identity else {}}

        def after_call(self, response: schemathesis.Response, case: Case) -> None:
            super().after_call(response, case)
            if identity:
                identity.noticed(case, response)

        def validate_response(
            self,
            response: schemathesis.Response,
            case: Case,
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            excluded = not_applicable(case, response, identity)
            if response.status_code == 404 and removed_by_cascade(self.recorder, case):
                excluded.append(ensure_resource_availability)
            try:
                case.validate_response(
                    response,
                    additional_checks=additional_checks,
                    excluded_checks=excluded,
                    transport_kwargs=kwargs or None,
                    recorder=self.recorder,
                )
            except FailureGroup as group:
                for failure in group.exceptions:
                    failures.setdefault(f"{case.operation.label}: {getattr(failure, 'title', failure)}", str(group))

        def teardown(self) -> None:
            type(self).completed += 1
            super().teardown()

    # For the same reason a suite can stop early (flaky generation); like schemathesis' own runner,
    # start another one until enough scenarios have run.
    for suite in range(STATEFUL_SUITES):
        with contextlib.suppress(hypothesis.errors.Flaky):
            hypothesis.seed(SEED + suite)(Scenario).run(
                settings=hypothesis.settings(
                    DEFAULT_STATE_MACHINE_SETTINGS,  # generation only, no deadline, no health checks
                    max_examples=STATEFUL_SCENARIOS - Scenario.completed,
                    stateful_step_count=STATEFUL_STEPS,
                    database=None,
                )
            )
        if Scenario.completed >= STATEFUL_SCENARIOS:
            break
    assert not failures, "\n\n".join(failures.values())
    assert Scenario.completed >= STATEFUL_SCENARIOS // 2, f"only {Scenario.completed} scenarios ran"
