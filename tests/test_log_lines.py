"""A JSON line holds exactly its parts, in order, as one valid line whatever the text in them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.log_lines import JsonFormatter
from app.logs import StderrHandler, emit_fields

values = st.one_of(
    st.text(),
    st.integers(),  # beyond 64 bits too: orjson refuses those, json.dumps writes them
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.text(), st.integers()), max_size=3),
)


def _as_read(value: object) -> object:
    """What a JSON reader gets back: an infinity is written as null (standard JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@given(
    fields=st.dictionaries(st.text(), values, max_size=6),
    message=st.text(),  # lone surrogates and control characters too
    request_id=st.one_of(st.none(), st.text(max_size=8)),
    exception=st.one_of(st.none(), st.text()),
)
def test_a_json_line_reads_back_as_its_parts_in_order(
    fields: dict[str, object], message: str, request_id: str | None, exception: str | None
) -> None:
    line = JsonFormatter().render(
        1_764_700_000.25, "INFO", "app.test", message, request_id=request_id, fields=fields, exception=exception
    )
    expected: dict[str, object] = {
        "timestamp": "2025-12-02T18:26:40.250Z",
        "level": "INFO",
        "logger": "app.test",
        "message": message,
    }
    if request_id is not None:
        expected["request_id"] = request_id
    expected.update({key: _as_read(value) for key, value in fields.items()})
    if exception is not None:
        expected["exception"] = exception
    assert list(json.loads(line).items()) == list(expected.items())
    assert "\n" not in line


def test_a_field_named_like_a_fixed_key_cannot_forge_it(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("app.test.forged")
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("real", extra={"level": "CRITICAL", "timestamp": "then", "kept": 1})
    line = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert (line["level"], line["message"], line["kept"]) == ("INFO", "real", 1)
    assert line["timestamp"] != "then"


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
