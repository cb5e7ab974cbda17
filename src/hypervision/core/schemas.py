"""Base shapes shared by every API schema: the strict model and the RFC 3339 instant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, StringConstraints
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


@dataclass(frozen=True)
class Trimmed(GroupedMetadata):
    """A text trimmed of surrounding blanks, at most ``max_length`` characters **as sent**:
    the limit the API description states is the limit of what a client may send, checked
    before ``strip_whitespace`` trims it (a 201-character name that starts with a form feed is
    refused where the description says 200). One number gives both checks, so they cannot
    drift apart."""

    max_length: int
    min_length: int | None = None
    pattern: str | None = None
    to_lower: bool | None = None

    def __iter__(self) -> Iterator[object]:
        yield StringConstraints(
            strip_whitespace=True,
            to_lower=self.to_lower,
            min_length=self.min_length,
            max_length=self.max_length,
            pattern=self.pattern,
        )
        limit = self.max_length

        def as_sent(value: Any) -> Any:
            if isinstance(value, str) and len(value) > limit:
                raise PydanticCustomError(
                    "string_too_long",
                    "String should have at most {max_length} characters",
                    {"max_length": limit},
                )
            return value

        yield BeforeValidator(as_sent)
