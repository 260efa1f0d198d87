"""Limits on what callers send, without a database: JSON documents (depth, size, values
both databases store alike) and free text."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.domain.errors import InvalidInput
from conveyor.domain.limits import JsonLimits, text_problem, validate_json, validate_text

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ROOMY = JsonLimits(max_bytes=10_000_000, max_depth=1_000)

storable_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8
)
storable_scalars = (
    st.none()
    | st.booleans()
    | st.integers(INT64_MIN, INT64_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | storable_text
)
documents = st.recursive(
    storable_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(storable_text, children, max_size=4)
    ),
    max_leaves=30,
)


def depth(document: Any) -> int:
    """How deep objects and arrays nest: 0 for a bare value, 1 for a flat object."""
    if isinstance(document, dict):
        return 1 + max(map(depth, document.values()), default=0)
    if isinstance(document, list):
        return 1 + max(map(depth, document), default=0)
    return 0


def size(document: Any) -> int:
    """The document's size as JSON, as Conveyor serialises it."""
    return len(orjson.dumps(document))


def accepted(document: Any, limits: JsonLimits) -> bool:
    refusal: InvalidInput | None = None
    try:
        validate_json(document, "payload", limits)
    except InvalidInput as error:
        refusal = error
    if refusal is None:
        return True
    assert refusal.field == "payload"  # a refusal names the field it was given
    return False


# ---------------------------------------------------------------------------------------
# Depth and size, on generated documents


@settings(max_examples=300)
@given(
    document=documents,
    max_depth=st.integers(0, 6),
    # "null" is not walked at all: it fits any limit of four bytes or more
    max_bytes=st.integers(4, 300),
)
def test_a_document_is_accepted_exactly_when_it_is_within_the_limits(
    document: Any, max_depth: int, max_bytes: int
) -> None:
    limits = JsonLimits(max_bytes=max_bytes, max_depth=max_depth)
    within = depth(document) <= max_depth and size(document) <= max_bytes
    assert accepted(document, limits) == within


@settings(max_examples=200)
@given(document=documents.filter(lambda document: document is not None))
def test_the_limits_are_inclusive_and_tight(document: Any) -> None:
    exactly = JsonLimits(max_bytes=size(document), max_depth=depth(document))
    assert accepted(document, exactly)
    assert not accepted(document, JsonLimits(size(document) - 1, depth(document)))
    if depth(document) > 0:
        assert not accepted(document, JsonLimits(size(document), depth(document) - 1))


def test_the_default_limits() -> None:
    assert JsonLimits() == JsonLimits(max_bytes=262_144, max_depth=32)
    nested: Any = "leaf"
    for _ in range(32):
        nested = [nested]
    assert accepted(nested, JsonLimits())
    assert not accepted([nested], JsonLimits())
    assert accepted("x" * (262_144 - 2), JsonLimits())
    assert not accepted("x" * (262_144 - 1), JsonLimits())


def test_a_deep_document_is_refused_without_recursion() -> None:
    nested: Any = 1
    for _ in range(100_000):
        nested = {"a": nested}
    assert not accepted(nested, JsonLimits())


# ---------------------------------------------------------------------------------------
# Values JSON or the databases cannot hold alike

UNSTORABLE = [
    math.nan,
    math.inf,
    -math.inf,
    2**63,
    INT64_MIN - 1,
    "NUL \x00 inside",
    "lone \ud800 surrogate",
    b"bytes",
    (1, 2),
    {1, 2},
    1 + 2j,
]


@pytest.mark.parametrize("value", UNSTORABLE, ids=repr)
def test_unstorable_values_are_refused(value: Any) -> None:
    assert not accepted(value, ROOMY)
    assert not accepted({"deep": [{"er": value}]}, ROOMY)


@pytest.mark.parametrize("value", [INT64_MIN, INT64_MAX, 0.0, -1.5e308, True, None, "", "é✓😀"])
def test_values_at_the_edges_of_storable_are_accepted(value: Any) -> None:
    assert accepted(value, ROOMY)
    assert accepted([value, {"v": value}], ROOMY)


@pytest.mark.parametrize("key", [1, None, ("a",), "NUL\x00", "\udfff"], ids=repr)
def test_object_keys_must_be_storable_strings(key: Any) -> None:
    assert not accepted({key: 1}, ROOMY)
    assert not accepted([{"ok": {key: 1}}], ROOMY)


@st.composite
def holding(draw: st.DrawFn, value: Any) -> Any:
    """A storable document with `value` somewhere inside it, among storable siblings."""
    document = value
    for _ in range(draw(st.integers(0, 4))):
        siblings = draw(st.lists(documents, max_size=3))
        if draw(st.booleans()):
            where = draw(st.integers(0, len(siblings)))
            document = [*siblings[:where], document, *siblings[where:]]
        else:
            wrapper = {f"sibling{i}": sibling for i, sibling in enumerate(siblings)}
            wrapper["here"] = document
            document = wrapper
    return document


@settings(max_examples=200)
@given(data=st.data(), value=st.sampled_from(UNSTORABLE))
def test_an_unstorable_value_anywhere_is_refused(data: st.DataObject, value: Any) -> None:
    assert not accepted(data.draw(holding(value)), ROOMY)


@settings(max_examples=100)
@given(data=st.data(), value=storable_scalars)
def test_storable_documents_are_accepted_with_room_to_spare(
    data: st.DataObject, value: Any
) -> None:
    assert accepted(data.draw(holding(value)), ROOMY)


# ---------------------------------------------------------------------------------------
# Text


@pytest.mark.parametrize("text", ["", "plain", "é✓😀 mixed", "tab\tand\nnewline"])
def test_ordinary_text_is_accepted(text: str) -> None:
    assert text_problem(text) is None
    validate_text(text, "error")


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "lone \ud800", "é then \udc80"], ids=repr)
def test_text_either_database_would_alter_is_refused_by_field(text: str) -> None:
    assert text_problem(text) is not None
    with pytest.raises(InvalidInput) as refused:
        validate_text(text, "error")
    assert refused.value.field == "error"


@given(st.text(st.characters() | st.sampled_from(["\x00", "\ud800", "\udfff", "é"])))
def test_text_is_refused_exactly_when_it_holds_nul_or_a_surrogate(text: str) -> None:
    unstorable = any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in text)
    assert (text_problem(text) is not None) == unstorable
