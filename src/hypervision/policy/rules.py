"""The one policy: who may see a labelled record, and what each role may do.

The visibility rule is declared once, as a list of clauses; each clause compiles two ways:
``check`` (Python, for single objects and live events) and ``sql`` (a filter that every list,
search and export query applies). The differential tests prove the two agree.

A user sees a record iff ``clearance >= level`` and ``need_to_know ⊆ user.groups`` and
(``audience`` is empty, or the user's organisation is the owner, or lies under an audience
organisation).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.types import Text

from hypervision.config import Settings
from hypervision.core.errors import Forbidden
from hypervision.policy.labels import Label
from hypervision.policy.roles import Actor, Role, Scope


@dataclass(frozen=True)
class Subject:
    """What the visibility rule needs to know about a reader."""

    allowed_levels: tuple[str, ...]
    groups: frozenset[str]
    organisation: str | None
    ancestry: frozenset[str]  # own organisation and its parents

    @classmethod
    def of(cls, settings: Settings, principal: Actor) -> Subject:
        levels: tuple[str, ...] = ()
        if principal.clearance in settings.label_levels:
            levels = settings.label_levels[: settings.level_rank(principal.clearance) + 1]
        return cls(
            allowed_levels=levels,
            groups=frozenset(principal.groups),
            organisation=str(principal.organisation_id) if principal.organisation_id else None,
            ancestry=frozenset(str(o) for o in principal.organisation_ancestry),
        )


# A mapped class (or alias) with the ``Labelled`` columns: label_level, need_to_know,
# audience, organisation_id.
LabelColumns = Any


class Clause(Protocol):
    def check(self, subject: Subject, label: Label) -> bool: ...

    def sql(self, subject: Subject, cols: LabelColumns, dialect: str) -> ColumnElement[bool]: ...


class LevelDominates:
    """The reader's clearance is at or above the record's level."""

    def check(self, subject: Subject, label: Label) -> bool:
        return label.level in subject.allowed_levels

    def sql(self, subject: Subject, cols: LabelColumns, dialect: str) -> ColumnElement[bool]:
        if not subject.allowed_levels:
            return false()
        result: ColumnElement[bool] = cols.label_level.in_(subject.allowed_levels)
        return result


class NeedToKnow:
    """Every need-to-know group of the record is one of the reader's groups."""

    def check(self, subject: Subject, label: Label) -> bool:
        return label.need_to_know <= subject.groups

    def sql(self, subject: Subject, cols: LabelColumns, dialect: str) -> ColumnElement[bool]:
        groups = sorted(subject.groups)
        if dialect == "postgresql":
            within: ColumnElement[bool] = cols.need_to_know.op("<@")(literal(groups, JSONB()))
            return within
        each = func.json_each(cols.need_to_know).table_valued("value")
        outside = select(literal(1)).select_from(each)
        if groups:
            outside = outside.where(each.c.value.not_in(groups))
        return ~exists(outside)


class AudienceAllows:
    """No audience, or the reader's organisation owns the record or lies under an audience."""

    def check(self, subject: Subject, label: Label) -> bool:
        if not label.audience:
            return True
        if subject.organisation is not None and label.owner == subject.organisation:
            return True
        return bool(label.audience & subject.ancestry)

    def sql(self, subject: Subject, cols: LabelColumns, dialect: str) -> ColumnElement[bool]:
        ancestry = sorted(subject.ancestry)
        if dialect == "postgresql":
            empty = func.jsonb_array_length(cols.audience) == 0
            under = cols.audience.op("?|")(array(ancestry, type_=Text)) if ancestry else false()
        else:
            empty = func.json_array_length(cols.audience) == 0
            each = func.json_each(cols.audience).table_valued("value")
            under = (
                exists(select(literal(1)).select_from(each).where(each.c.value.in_(ancestry)))
                if ancestry
                else false()
            )
        owner = (
            cols.organisation_id == uuid.UUID(subject.organisation)
            if subject.organisation
            else false()
        )
        return or_(empty, owner, under)


VISIBILITY: Sequence[Clause] = (LevelDominates(), NeedToKnow(), AudienceAllows())


def can_see(subject: Subject, label: Label) -> bool:
    return all(clause.check(subject, label) for clause in VISIBILITY)


# Tests only: the leak matrix switches the application's SQL filter off on PostgreSQL to
# prove that row-level security alone still holds. Nothing in the application sets it.
SQL_FILTER_ENABLED = True


def visible_filter(subject: Subject, cols: LabelColumns, dialect: str) -> ColumnElement[bool]:
    """The SQL form of ``can_see`` for rows of ``cols`` (a mapped class or an alias)."""
    if not SQL_FILTER_ENABLED:
        return true()
    clauses = [clause.sql(subject, cols, dialect) for clause in VISIBILITY]
    return and_(true(), *clauses)


# --- actions --------------------------------------------------------------------------------


class Action(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    TRIAGE = "triage"  # validate, qualify severity, mark duplicate, link to a situation
    APPROVE_LABEL = "approve_label"
    ADMINISTER = "administer"
    AUDIT = "audit"


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.OFFICER: frozenset({Action.READ, Action.WRITE}),
    Role.WATCH_OFFICER: frozenset({Action.READ, Action.WRITE, Action.TRIAGE, Action.APPROVE_LABEL}),
    Role.AUTHORITY: frozenset({Action.READ}),
    Role.DATA_STEWARD: frozenset({Action.READ, Action.WRITE}),
    Role.ADMINISTRATOR: frozenset({Action.ADMINISTER}),
    Role.ORGANISATION_ADMINISTRATOR: frozenset(),  # scoped: identity.review checks the org
    Role.SECURITY_OFFICER: frozenset({Action.AUDIT}),
}

ACTION_SCOPE: dict[Action, str] = {
    Action.READ: Scope.READ,
    Action.WRITE: Scope.WRITE,
    Action.TRIAGE: Scope.WRITE,
    Action.APPROVE_LABEL: Scope.WRITE,
    Action.ADMINISTER: Scope.ADMIN,
    Action.AUDIT: Scope.AUDIT,
}


def allowed(principal: Actor, action: Action) -> bool:
    by_role = any(action in ROLE_ACTIONS.get(Role(r), frozenset()) for r in principal.roles)
    return by_role and principal.has_scope(ACTION_SCOPE[action])


def authorize(principal: Actor, action: Action) -> None:
    if not allowed(principal, action):
        raise Forbidden(
            f"Votre rôle ne permet pas cette action ({action.value}).",
            f"Your role does not allow this action ({action.value}).",
        )
