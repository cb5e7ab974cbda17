"""Optimistic concurrency: a versioned record's ETag, checked against ``If-Match``."""

from __future__ import annotations

import uuid
from typing import Protocol

from hypervision.core.errors import AppError


class PreconditionRequired(AppError):
    status, code = 428, "precondition_required"
    fr = "En-tête If-Match requis : relisez l'entrée et renvoyez son ETag."
    en = "If-Match header required: read the entry again and send its ETag."


class PreconditionFailed(AppError):
    status, code = 412, "precondition_failed"
    fr = "L'entrée a été modifiée entre-temps : relisez-la avant de la corriger."
    en = "The entry changed in the meantime: read it again before correcting it."


class HasVersion(Protocol):
    """Any record with an id and a version: entries, situations, zones, syntheses."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def version(self) -> int: ...


def etag(record: HasVersion) -> str:
    return f'"{record.id}.{record.version}"'


def check_if_match(record: HasVersion, if_match: str | None, *, required: bool = True) -> None:
    if if_match is None:
        if required:
            raise PreconditionRequired()
        return
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" not in tags and etag(record) not in tags:
        raise PreconditionFailed()
