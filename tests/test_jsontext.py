"""mcpzip's JSON text is exactly the standard json's, without importing json at start-up."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from conftest import ROOT

from mcpzip.base import jsontext

VALUES = [
    {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "a", "inputSchema": {"type": "object"}}]}},
    ["ünïcødé ✓ 𝄞", "\u2028\u2029", "quote \" backslash \\ control \x00\x1f", "\ud800 lone surrogate"],
    [0, -1, 2**70, -(2**70), 1.5, -0.0, 1e-300, 1e300, True, False, None],
    {"": {}, "nested": [[[[]]]], "1": [{}]},
    "just a string",
    42,
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_matches_json(value):
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert jsontext.dumps(value) == expected
    assert jsontext.loads(expected) == json.loads(expected)


@pytest.mark.parametrize(
    "options",
    [{"ensure_ascii": True, "separators": (", ", ": ")}, {"sort_keys": True}, {"indent": 1, "sort_keys": True},
     {"ensure_ascii": True, "separators": (",", ":"), "sort_keys": True}],
)  # fmt: skip
@pytest.mark.parametrize("value", VALUES)
def test_dumps_with_jsons_options_matches_json(value, options):
    assert jsontext.dumps(value, **options) == json.dumps(value, **{"ensure_ascii": False, "separators": (",", ":"), **options})


def test_dumps_of_special_keys_and_floats_matches_json():
    value = {1: "int key", 2.5: "float key", True: "bool key", None: "none key", "nan": math.inf}
    assert jsontext.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize(
    "text",
    [
        ' \t\r\n{"a": [1, 2.5e3, -0, "x\\u00e9\\ud83d\\ude00"]} \n',
        "[NaN, Infinity, -Infinity]",
        '{"dup": 1, "dup": 2}',
        "12345678901234567890123",
        '"\\ud800"',
    ],
)
def test_loads_matches_json(text):
    data = text.encode("utf-8", "surrogatepass")
    # Compared by repr: NaN != NaN, but the reprs agree.
    assert repr(jsontext.loads(text)) == repr(json.loads(text))
    assert repr(jsontext.loads(data)) == repr(json.loads(data))


@pytest.mark.parametrize(
    "data",
    ['{"a": 1}'.encode("utf-16"), '{"a": 1}'.encode("utf-16-le"), '{"a": 1}'.encode("utf-32"),
     b'\xef\xbb\xbf{"a": 1}', bytearray(b'{"a": 1}')],
)  # fmt: skip
def test_loads_detects_encodings_like_json(data):
    assert jsontext.loads(data) == json.loads(data) == {"a": 1}


@pytest.mark.parametrize(
    "text",
    ["", "   ", "{", '{"a": 1} x', '{"a": 1}{}', "[1,]", "nul", "'single'", '"\x00"', "\ufeff{}", b"\xff\xfe\x00", b"\xc3("],
)
def test_errors_are_jsons_errors(text):
    with pytest.raises(ValueError) as ours:
        jsontext.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_unserialisable_and_circular_values_raise_as_json_does():
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsontext.dumps({"a": {1, 2}})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsontext.dumps(loop)
    assert jsontext.dumps({"after": "errors"}) == '{"after":"errors"}'


def test_the_real_catalog_round_trips_identically():
    text = (ROOT / "benchmarks" / "data" / "ALL.json").read_text()
    value = jsontext.loads(text)
    assert value == json.loads(text)
    assert jsontext.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_json_is_not_imported():
    code = "import sys, mcpzip.base.jsontext as j; j.dumps(j.loads('[1]')); print('json' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, "[" * 5_000 + "]" * 5_000])
def test_nesting_deeper_than_the_parser_can_go_is_a_value_error(text):
    with pytest.raises(ValueError, match="nested too deeply"):
        jsontext.loads(text)
    with pytest.raises(ValueError, match="nested too deeply"):
        jsontext.loads(text.encode())


def test_values_nested_too_deeply_to_serialise_are_a_value_error():
    value: list = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(ValueError, match="nested too deeply"):
        jsontext.dumps(value)


def test_utf8_replaces_lone_surrogates_only():
    assert jsontext.utf8("ok ✓ 𝄞") == "ok ✓ 𝄞".encode()
    assert jsontext.utf8("a\ud800b\udfffc") == "a\ufffdb\ufffdc".encode()
