"""Records, tables, GraphQL types and inputs name the same fields.

Adding an optional field touches the record (and its commands) in
``app/domain/records.py``, the table in ``app/db/models.py`` (plus a
migration), the GraphQL type in ``app/schema/types.py`` and its input in
``app/schema/inputs.py``; everything else is derived. Leaving out any of them
fails here (or in ``test_migrations.py`` for the migration, or in
``test_round_trip.py`` for a value that is not stored and read back).
"""

from __future__ import annotations

import msgspec
import pytest

from app.db.repositories import INTERACTIONS, METRICS, SESSIONS
from app.domain import records as r
from app.resolvers.schema import build_schema
from app.schema import inputs as i
from app.schema import types as t


def fields(struct: type[msgspec.Struct]) -> set[str]:
    return {f.name for f in msgspec.structs.fields(struct)}


def graphql_fields(cls: type) -> set[str]:
    return {f.python_name for f in cls.__strawberry_definition__.fields}  # type: ignore[attr-defined]


@pytest.mark.parametrize("rowmap", [SESSIONS, INTERACTIONS, METRICS], ids=lambda m: m.table.name)
def test_every_column_is_a_field_or_derived_and_every_field_a_column(rowmap):
    columns = {c.name for c in rowmap.table.columns}
    assert columns == fields(rowmap.record) | set(rowmap.derived)


# GraphQL fields that are not stored on the record itself (resolved from elsewhere).
RESOLVED = {
    "InterviewSession": {"interactions", "metrics", "interactions_connection"},
}


@pytest.mark.parametrize(
    ("gql", "record"),
    [
        (t.InterviewSession, r.Session),
        (t.Interaction, r.Interaction),
        (t.SessionMetric, r.Metric),
        (t.JobContext, r.JobContext),
        (t.SessionSettings, r.SessionSettings),
        (t.QuestionClassification, r.QuestionClassification),
        (t.GeneratedResponse, r.GeneratedResponse),
        (t.UserAnalytics, r.Analytics),
        (t.QuestionTypeCount, r.QuestionTypeCount),
        (t.PerformanceTrend, r.PerformanceTrend),
        (t.TrendMetrics, r.TrendMetrics),
    ],
    ids=lambda x: x.__name__,
)
def test_graphql_types_show_every_field_of_their_record(gql, record):
    extra = RESOLVED.get(gql.__name__, set())
    assert graphql_fields(gql) - extra == fields(record)


@pytest.mark.parametrize(
    ("gql", "command"),
    [
        (i.CreateSessionInput, r.CreateSession),
        (i.UpdateSessionInput, r.UpdateSession),
        (i.JobContextInput, r.JobContext),
        (i.SessionSettingsInput, r.SessionSettings),
        (i.CreateInteractionInput, r.CreateInteraction),
        (i.UpdateInteractionInput, r.UpdateInteraction),
        (i.QuestionClassificationInput, r.QuestionClassification),
        (i.GeneratedResponseInput, r.GeneratedResponse),
        (i.RecordMetricsInput, r.RecordMetrics),
    ],
    ids=lambda x: x.__name__,
)
def test_graphql_inputs_take_every_field_of_their_command(gql, command):
    assert graphql_fields(gql) == fields(command)


@pytest.mark.parametrize(
    ("command", "record"),
    [
        (r.CreateSession, r.Session),
        (r.UpdateSession, r.Session),
        (r.CreateInteraction, r.Interaction),
        (r.UpdateInteraction, r.Interaction),
        (r.RecordMetrics, r.Metric),
    ],
    ids=lambda x: x.__name__,
)
def test_commands_only_set_fields_the_record_has(command, record):
    assert fields(command) <= fields(record)


def test_rows_are_read_by_name_from_the_record_fields():
    # The generated reader names each column; no position anywhere.
    for rowmap in (SESSIONS, INTERACTIONS, METRICS):
        for name in rowmap.fields:
            assert f"row[{name!r}]" in rowmap.source


def test_the_schema_builds_with_every_type():
    sdl = build_schema().as_str()
    for name in ("InterviewSession", "Interaction", "SessionMetric", "CreateInteractionInput"):
        assert f" {name} " in sdl or f"type {name}" in sdl or f"input {name}" in sdl
