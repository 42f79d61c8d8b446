"""schema.graphql must equal what the code exports."""

from pathlib import Path

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
    sdl = export_sdl()
    for fragment in (
        "enum SessionStatus",
        "requiresSTAR: Boolean!",
        "session(id: ID!): InterviewSession!",
        "sessions(limit: Int = null, status: SessionStatus = null): [InterviewSession!]!",
        "createSession(input: CreateSessionInput!): InterviewSession!",
        "recordMetrics(input: RecordMetricsInput!): SessionMetric!",
        "deleteSession(id: ID!): Boolean!",
        "analytics(startDate: Date = null, endDate: Date = null): UserAnalytics!",
    ):
        assert fragment in sdl
