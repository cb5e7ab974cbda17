"""Trimmed texts: the documented limits hold for the text as sent, trimmed after."""

from typing import Annotated

import pytest
from pydantic import TypeAdapter, ValidationError

from hypervision.core.schemas import Trimmed
from hypervision.identity.schemas import Code
from hypervision.logbook.schemas import EntryCreate

Title = TypeAdapter(Annotated[str, Trimmed(10, min_length=1)])


def test_a_text_is_trimmed_and_its_description_states_its_limits() -> None:
    assert Title.validate_python("  Crue  ") == "Crue"
    assert Title.json_schema() == {"type": "string", "minLength": 1, "maxLength": 10}


@pytest.mark.parametrize("sent", ["\f" + "a" * 10, "a" * 11, " " * 11])
def test_the_limit_applies_to_the_text_as_sent(sent: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Title.validate_python(sent)
    assert refused.value.errors()[0]["type"] == "string_too_long"


def test_blanks_alone_are_an_empty_text() -> None:
    with pytest.raises(ValidationError) as refused:
        Title.validate_python("   ")
    assert refused.value.errors()[0]["type"] == "string_too_short"


def test_pattern_and_limits_reach_the_api_description() -> None:
    schema = TypeAdapter(Code).json_schema()
    assert schema == {
        "type": "string",
        "minLength": 2,
        "maxLength": 32,
        "pattern": r"^[A-Z0-9_-]+$",
    }
    title = EntryCreate.model_json_schema()["properties"]["title"]
    assert (title["minLength"], title["maxLength"]) == (1, 200)
    with pytest.raises(ValidationError) as refused:
        EntryCreate.model_validate({"title": "\f" + "x" * 200})
    assert {"type": "string_too_long", "loc": ("title",)} in [
        {"type": e["type"], "loc": e["loc"]} for e in refused.value.errors()
    ]
