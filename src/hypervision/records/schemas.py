"""The label as a person types it (codes) and as it is presented (codes again)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from hypervision.core.schemas import Strict, Trimmed

Code = Annotated[str, Trimmed(32, min_length=1)]


class LabelIn(Strict):
    level: Code
    need_to_know: list[Code] = Field(default_factory=list, max_length=10)
    audience: list[Code] = Field(default_factory=list, max_length=50)  # organisation codes


class LabelRead(BaseModel):
    level: str
    need_to_know: list[str]
    audience: list[str]  # organisation codes; empty: every organisation
