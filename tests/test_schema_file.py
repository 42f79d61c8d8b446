"""schema.graphql must equal what the code exports."""

from pathlib import Path

import graphql

from app.cli import main as cli
from app.resolvers.schema import export_sdl

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_matches_code():
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == export_sdl(), (
        "schema.graphql is stale: run `interview-api export-schema --output schema.graphql`"
    )


def test_export_schema_command_writes_the_same_sdl(tmp_path):
    out = tmp_path / "schema.graphql"
    cli(["export-schema", "--output", str(out)])
    assert out.read_text() == export_sdl()


def test_fixed_names_from_the_spec_are_exported():
    schema = graphql.build_schema(export_sdl())

    def signature(type_name: str, field: str) -> str:
        f = schema.type_map[type_name].fields[field]  # type: ignore[union-attr]
        args = ", ".join(f"{name}: {arg.type}" for name, arg in f.args.items())
        return f"{field}({args}): {f.type}" if args else f"{field}: {f.type}"

    assert isinstance(schema.type_map["SessionStatus"], graphql.GraphQLEnumType)
    assert signature("QuestionClassification", "requiresSTAR") == "requiresSTAR: Boolean!"
    for type_name, expected in (
        ("Query", "session(id: ID!): InterviewSession!"),
        ("Query", "sessions(limit: Int, status: SessionStatus): [InterviewSession!]!"),
        ("Query", "analytics(startDate: Date, endDate: Date): UserAnalytics!"),
        ("Mutation", "createSession(input: CreateSessionInput!): InterviewSession!"),
        ("Mutation", "recordMetrics(input: RecordMetricsInput!): SessionMetric!"),
        ("Mutation", "deleteSession(id: ID!): Boolean!"),
    ):
        assert signature(type_name, expected.split("(")[0]) == expected
