"""The engines' JSON codec: orjson's output where it can, the standard library's where orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.storage.types import dumps_json, loads_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_every_json_value_round_trips(value: Any) -> None:
    assert loads_json(dumps_json(value)) == value


@pytest.mark.parametrize("value", ["lone \ud800 surrogate", {"big": 2**70}, ["\udfff"]])
def test_what_orjson_refuses_is_written_by_the_standard_library(value: Any) -> None:
    text = dumps_json(value)
    assert text == json.dumps(value)
    assert loads_json(text) == value


def test_the_standard_librarys_older_rows_still_read() -> None:
    assert loads_json(json.dumps({"name": "Zoë", "scopes": ["email", "openid"]}, indent=2)) == {
        "name": "Zoë",
        "scopes": ["email", "openid"],
    }


@pytest.mark.parametrize(
    "value", [-(2**63) - 1, 2**64, {"id": -(2**63) - 1}, [10**30, "12345678901234567890"]]
)
def test_integers_past_64_bits_read_back_exactly(value: Any) -> None:
    assert loads_json(dumps_json(value)) == value
    assert loads_json(dumps_json(value).encode()) == value
