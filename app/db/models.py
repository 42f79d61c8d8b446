"""SQLAlchemy 2 typed tables.

The repositories mostly use the ``__table__`` of these models through Core
statements (cheaper than ORM objects on read paths); the ORM mapping is the
single definition Alembic and the tests rely on. Relationships are
``lazy="raise"`` so an accidental lazy load fails loudly in tests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.db import search_index

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The longest ``search_text`` (UTF-8 bytes) also kept as ``search_short``. A
# PostgreSQL btree entry holds at most 2,704 bytes: this, a user id of up to
# 255 characters (1,020 bytes), the status, the type, a time and a UUID fit.
SEARCH_SHORT_BYTES = 1200


def in_models(dialect: str) -> Any:
    """Alembic's ``include_object`` for ``dialect``: what the models describe there
    (not SQLite's FTS5 search table and its shadow tables, which SQLAlchemy's
    metadata cannot describe: app/db/search_index.py)."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and name in search_index.TABLES:
            return False
        # Indexes declared with ddl_if(dialect=...) exist on that database only.
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect in (None, dialect)

    return include


# None is stored as SQL NULL, not as the JSON value null.
JsonDoc = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored and read back as aware UTC datetimes on both databases.

    SQLite keeps no zone (it reads back naive values); PostgreSQL's timestamptz
    does. Normalising here means every layer above sees UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UTCDateTime()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JsonDoc, list[Any]: JsonDoc, datetime: Timestamp}


class SessionRow(Base):
    __tablename__ = "interview_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    job_context: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # Derived from job_context when written (app.db.repositories): real columns
    # for the list filters and the search, indexed, instead of JSON at query time.
    interview_type: Mapped[str | None] = mapped_column(String(16))
    search_text: Mapped[str | None] = mapped_column(Text)
    # ``search_text`` again when it is at most SEARCH_SHORT_BYTES long, else NULL:
    # small enough for a btree entry, so PostgreSQL searches a user's sessions
    # from an index alone (below; migration 0007).
    search_short: Mapped[str | None] = mapped_column(Text)

    interactions: Mapped[list[InteractionRow]] = relationship(
        back_populates="session", lazy="raise", passive_deletes=True
    )
    metrics: Mapped[list[MetricRow]] = relationship(
        back_populates="session", lazy="raise", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint("status IN ('active', 'paused', 'completed')", name="status"),
        # Keyset pages: newest first by (created_at, id), per user, per status, per type.
        Index("ix_interview_sessions_user_created_id", "user_id", "created_at", "id"),
        Index("ix_interview_sessions_user_status_created", "user_id", "status", "created_at", "id"),
        Index(
            "ix_interview_sessions_user_type_created",
            "user_id",
            "interview_type",
            "created_at",
            "id",
        ),
        # PostgreSQL: substring search (LIKE '%term%') by trigrams, for a term
        # few of a user's sessions hold (migration 0008); a common term walks
        # the covering index below instead.
        Index(
            "ix_interview_sessions_search_short_trgm",
            "search_short",
            postgresql_using="gin",
            postgresql_ops={"search_short": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        # PostgreSQL: the rare sessions whose text is too long for
        # ``search_short``, searched by their full text.
        Index(
            "ix_interview_sessions_user_created_long",
            "user_id",
            "created_at",
            "id",
            postgresql_where=text("search_short IS NULL"),
        ).ddl_if(dialect="postgresql"),
        # PostgreSQL: a list page with any filters, search included, walks this
        # index alone (an index-only scan) and reads table rows only for the
        # page it returns.
        Index(
            "ix_interview_sessions_user_created_covering",
            "user_id",
            "created_at",
            "id",
            postgresql_include=["status", "interview_type", "search_short"],
        ).ddl_if(dialect="postgresql"),
        # SQLite: the same substring search reads the text from the index, in
        # page order, never the table rows (10 ms -> 0.5 ms on 10,000 sessions).
        Index(
            "ix_interview_sessions_user_created_search",
            "user_id",
            "created_at",
            "id",
            "search_text",
        ).ddl_if(dialect="sqlite"),
    )


class InteractionRow(Base):
    __tablename__ = "interactions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("interview_sessions.id", ondelete="CASCADE")
    )
    question: Mapped[str] = mapped_column(Text)
    question_classification: Mapped[dict[str, Any] | None]
    generated_responses: Mapped[list[Any]]
    selected_response: Mapped[str | None] = mapped_column(Text)
    user_feedback: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[datetime]
    # Derived from question_classification.type: analytics group by it.
    question_type: Mapped[str | None] = mapped_column(String(16))

    session: Mapped[SessionRow] = relationship(back_populates="interactions", lazy="raise")

    __table_args__ = (
        Index("ix_interactions_session_timestamp_id", "session_id", "timestamp", "id"),
        Index("ix_interactions_session_type", "session_id", "question_type"),
    )


class MetricRow(Base):
    __tablename__ = "session_metrics"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("interview_sessions.id", ondelete="CASCADE")
    )
    transcription_latency_ms: Mapped[int | None] = mapped_column(Integer)
    response_generation_ms: Mapped[int | None] = mapped_column(Integer)
    total_latency_ms: Mapped[int | None] = mapped_column(Integer)
    transcription_accuracy: Mapped[float | None] = mapped_column(Double)
    user_satisfaction: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]

    session: Mapped[SessionRow] = relationship(back_populates="metrics", lazy="raise")

    __table_args__ = (
        Index("ix_session_metrics_session_created_id", "session_id", "created_at", "id"),
    )


class SessionEventRow(Base):
    """The event table (transactional outbox): one row per committed change.

    ``id`` orders all events (on SQLite, commit order: writers are serialised);
    ``seq`` orders one user's events in commit order on both databases (the
    user's counter row is locked until the writing transaction commits). No
    foreign key: a session's events outlive it (SESSION_DELETED).
    """

    __tablename__ = "session_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    seq: Mapped[int] = mapped_column(BigInteger)
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]

    __table_args__ = (
        UniqueConstraint("user_id", "seq", name="uq_session_events_user_seq"),
        Index("ix_session_events_user_session_seq", "user_id", "session_id", "seq"),
        Index("ix_session_events_at", "at"),
    )


class UserEventSeqRow(Base):
    """Each user's last event ``seq``: the counter the event writer bumps."""

    __tablename__ = "user_event_seq"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class AnalyticsDayRow(Base):
    """Analytics rollup: a user's sessions created on one UTC day.

    The rollup tables are kept by the repositories in the transaction of each
    change (increments; a deleted session's share is subtracted the same way),
    so analytics read a few hundred rollup rows instead of every interaction.
    ``day`` is always the UTC day of the *session's* ``created_at``: the
    analytics window selects sessions by that day.
    """

    __tablename__ = "analytics_days"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer)
    completed: Mapped[int] = mapped_column(Integer)  # with an endedAt
    duration_us: Mapped[int] = mapped_column(BigInteger)  # sum over the completed


class AnalyticsMetricDayRow(Base):
    """Analytics rollup: metrics recorded on ``metric_day`` for sessions of ``day``."""

    __tablename__ = "analytics_metric_days"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric_day: Mapped[date] = mapped_column(Date, primary_key=True)
    metrics: Mapped[int] = mapped_column(Integer)
    latency_sum: Mapped[int] = mapped_column(BigInteger)
    latency_n: Mapped[int] = mapped_column(Integer)
    accuracy_sum: Mapped[float] = mapped_column(Double)
    accuracy_n: Mapped[int] = mapped_column(Integer)
    satisfaction_sum: Mapped[int] = mapped_column(BigInteger)
    satisfaction_n: Mapped[int] = mapped_column(Integer)


class AnalyticsQuestionTypeRow(Base):
    """Analytics rollup: classified interactions of a day's sessions, by type."""

    __tablename__ = "analytics_question_types"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    question_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    interactions: Mapped[int] = mapped_column(Integer)


class IdempotencyKeyRow(Base):
    """A write request's ``Idempotency-Key`` and its answer (see app/idempotency.py).

    The row is inserted in the transaction of the change it guards (the
    primary key makes a second claim wait, then fail), with ``status`` NULL
    until the answer is stored right after; a replay returns ``status``,
    ``headers`` and ``body`` as they were.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[Any | None] = mapped_column(JsonDoc)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)


sessions_table = cast(Table, SessionRow.__table__)
interactions_table = cast(Table, InteractionRow.__table__)
metrics_table = cast(Table, MetricRow.__table__)
events_table = cast(Table, SessionEventRow.__table__)
event_seq_table = cast(Table, UserEventSeqRow.__table__)
analytics_days_table = cast(Table, AnalyticsDayRow.__table__)
analytics_metric_days_table = cast(Table, AnalyticsMetricDayRow.__table__)
analytics_types_table = cast(Table, AnalyticsQuestionTypeRow.__table__)
idempotency_table = cast(Table, IdempotencyKeyRow.__table__)
