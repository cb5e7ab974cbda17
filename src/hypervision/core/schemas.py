"""Base shapes shared by every API schema: the strict model and the RFC 3339 instant."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


class Strict(BaseModel):
    """Unknown fields are refused, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


def rfc3339_only(value: Any) -> Any:
    """Date-times are RFC 3339 text, as the API description says; Pydantic alone would also
    take a number, or a numeric string, as Unix time."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value)
    ):
        raise ValueError("an RFC 3339 date-time is expected, e.g. 2024-07-26T20:00:00+02:00")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(rfc3339_only)]


def as_sent(max_length: int) -> BeforeValidator:
    """A text's ``maxLength`` applied to the text as sent, before ``strip_whitespace`` trims
    it: the limit the API description states is the limit of what a client may send. Put it
    after the ``StringConstraints`` it repeats the limit of."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > max_length:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters",
                {"max_length": max_length},
            )
        return value

    return BeforeValidator(check)
