"""The JSON line is written by hand for speed: it must be exactly what `json.dumps` writes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.logs import JsonFormatter, StderrHandler, emit_fields

values = st.one_of(
    st.text(),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.text(), st.integers()), max_size=3),
)


@given(
    fields=st.dictionaries(st.text(), values, max_size=6),
    message=st.text(),
    exception=st.one_of(st.none(), st.text()),
)
def test_a_json_line_is_what_json_dumps_writes(fields: dict[str, object], message: str, exception: str | None) -> None:
    line = JsonFormatter().render(1_764_700_000.25, "INFO", "app.test", message, fields=fields, exception=exception)
    expected: dict[str, object] = {
        "timestamp": "2025-12-02T18:26:40.250Z",
        "level": "INFO",
        "logger": "app.test",
        "message": message,
    }
    expected.update(fields)
    if exception is not None:
        expected["exception"] = exception
    assert line == json.dumps(expected)
    assert "\n" not in line


def test_lines_of_one_loop_turn_go_out_together_and_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("app.test.batched")
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "level", logging.INFO)

    async def turn() -> list[str]:
        emit_fields(logger, logging.INFO, "first", {"n": 1})
        emit_fields(logger, logging.INFO, "second", {"n": 2})
        waiting = stream.getvalue()
        logger.warning("a record")  # written at once, after the lines before it
        await asyncio.sleep(0)
        emit_fields(logger, logging.INFO, "third", {"n": 3})
        assert waiting == ""
        await asyncio.sleep(0)  # the end of the turn
        return stream.getvalue().splitlines()

    lines = asyncio.run(turn())
    assert [json.loads(line)["message"] for line in lines] == ["first", "second", "a record", "third"]
