"""Settings, read from the environment once, validated, immutable.

This is the only module that reads ``os.environ``; everything else receives a
``Settings`` instance.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import limits

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MIN_SECRET_BYTES = 32
DEVELOPMENT_RATE_LIMITS = "1000/minute;100/second"
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


class ConfigError(ValueError):
    """The environment does not describe a safe, runnable configuration."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./data/interview.db"
    app_env: str = "production"
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_secret_file: str = "./data/jwt-secret"
    jwt_public_key: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # Signs pagination cursors; by default derived from the JWT key.
    cursor_secret: str | None = field(default=None, repr=False)
    rate_limits: str = "100/minute;10/second"
    rate_limit_storage: str = "memory://"
    # A shared store (Redis) gets this long per request; after a failure it is
    # not asked again for RATE_LIMIT_BREAKER_SECONDS (requests go unlimited).
    rate_limit_timeout: float = 0.25
    rate_limit_breaker_seconds: float = 10.0
    max_active_sessions: int = 10
    max_body_bytes: int = 1024 * 1024
    graphql_introspection: bool = True
    graphql_max_depth: int = 10
    graphql_max_aliases: int = 15
    graphql_max_tokens: int = 2000
    graphql_compiled: bool = True
    rest_fast_reads: bool = True
    # Tests and debugging: every answer of a compiled plan is compared with the
    # standard executor's (twice the work; never in production).
    graphql_verify_plans: bool = False
    graphql_trusted_documents: str | None = None
    # None: the same store as RATE_LIMIT_STORAGE (Redis is shared, memory is not).
    graphql_apq_storage: str | None = None
    graphql_apq_size: int = 1000
    db_pool_size: int = 10
    # Guarded writes' own connections: few, as concurrent writes to the same
    # rows (a session's rollups and the user's event sequence) wait for each
    # other's locks inside PostgreSQL, and more of them only add that waiting
    # (PostgreSQL's CPU per write doubled from 4 to 10 on 2 cores).
    db_write_pool_size: int = 4
    db_pool_timeout: float = 10.0
    db_command_timeout: float = 15.0
    db_connect_timeout: float = 5.0
    db_breaker_seconds: float = 1.0
    log_level: str = "INFO"
    log_format: str = "text"
    access_log: bool = True
    # None: CORS_ORIGINS unset (no CORS in production, local pages in development).
    cors_origins: tuple[str, ...] | None = None
    event_retention: timedelta = timedelta(days=7)
    idempotency_ttl: timedelta = timedelta(hours=24)
    max_subscriptions_per_connection: int = 20
    ws_init_timeout: float = 5.0
    ws_send_timeout: float = 10.0
    sse_heartbeat_seconds: float = 15.0
    # Slow and greedy clients (app/serving.py), per server process.
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0
    # An answer (an SSE stream included) its client reads nothing of for this long.
    http_send_timeout: float = 10.0
    max_connections: int = 1000
    # A request's head: its bytes (request line and headers) and its headers.
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    # Operations (operations.md).
    shutdown_drain_seconds: float = 0.0
    shutdown_timeout: float = 30.0
    db_startup_timeout: float = 30.0
    metrics_token: str | None = field(default=None, repr=False)
    metrics: bool = True
    # Proxies whose X-Forwarded-For/-Proto are believed: "" none, "*" any.
    forwarded_allow_ips: str = ""
    root_path: str = ""
    # Traces are exported when an OTLP endpoint is configured (OTEL_* variables).
    tracing: bool = False
    tracing_protocol: str = "http/protobuf"
    otel_service_name: str | None = None
    # prometheus-client's multiprocess directory (set by `serve --workers N`).
    metrics_dir: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def cursor_key(self) -> bytes:
        """What signs pagination cursors: CURSOR_SECRET, else the JWT key (every
        instance of a deployment shares it, so cursors work across instances)."""
        return (self.cursor_secret or self.jwt_secret or self.jwt_public_key or "").encode()

    @property
    def uses_hmac(self) -> bool:
        return any(alg in HMAC_ALGORITHMS for alg in self.jwt_algorithms)

    def with_overrides(self, **changes: Any) -> Settings:
        """A validated copy with some values changed (used by tests and the CLI)."""
        return replace(self, **changes).validated()

    def validated(self) -> Settings:
        _validate(self)
        return self


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str, minimum: int = 1) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {raw!r}")
    return value


def _non_negative(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be zero or more, got {raw!r}")
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(name: str, raw: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s`` or plain seconds."""
    m = _DURATION.match(raw.lower())
    if m is None or float(m[1]) <= 0:
        raise ConfigError(
            f"{name} must be a positive duration like 7d, 12h, 30m or 3600, got {raw!r}"
        )
    return timedelta(seconds=float(m[1]) * _UNITS[m[2]])


def _origins(raw: str | None) -> tuple[str, ...] | None:
    """``CORS_ORIGINS``: None when unset, ``("*",)``, or exact origins."""
    if raw is None:
        return None
    items = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if items == ("*",):
        return items
    for origin in items:
        if not re.match(r"^https?://[^/\s:]+(:\d{1,5})?$", origin):
            raise ConfigError(
                f"CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port]) or '*'"
            )
    return items


def _validate(s: Settings) -> None:
    if not (
        s.database_url.startswith("sqlite+aiosqlite://")
        or s.database_url.startswith("postgresql+asyncpg://")
    ):
        raise ConfigError(
            "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    if s.app_env not in {"production", "development"}:
        raise ConfigError("APP_ENV must be 'production' or 'development'")
    if not s.jwt_algorithms:
        raise ConfigError("JWT_ALGORITHMS must name at least one algorithm")
    unknown = [a for a in s.jwt_algorithms if a not in HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS]
    if unknown:
        raise ConfigError(f"JWT_ALGORITHMS has unsupported algorithms: {', '.join(unknown)}")
    hmac = [a for a in s.jwt_algorithms if a in HMAC_ALGORITHMS]
    if hmac and len(hmac) != len(s.jwt_algorithms):
        # Mixing HMAC with public-key algorithms is how algorithm confusion starts.
        raise ConfigError("JWT_ALGORITHMS must not mix HMAC and public-key algorithms")
    if hmac:
        if not s.jwt_secret:
            raise ConfigError(
                "JWT_SECRET is not set (at least 32 bytes); `make run` creates a development one"
            )
        if len(s.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError("JWT_SECRET is too short: it must be at least 32 bytes")
    elif not s.jwt_public_key:
        raise ConfigError(f"JWT_PUBLIC_KEY (PEM) is required for {', '.join(s.jwt_algorithms)}")
    try:
        items = limits.parse_many(s.rate_limits)
    except ValueError as exc:
        raise ConfigError(f"RATE_LIMITS is not valid: {exc}") from None
    if not items:
        raise ConfigError("RATE_LIMITS must name at least one limit")
    if not s.rate_limit_storage.startswith(("memory://", "redis://", "rediss://")):
        raise ConfigError("RATE_LIMIT_STORAGE must be memory:// or redis://host:port")
    apq = s.graphql_apq_storage
    if apq is not None and not apq.startswith(("memory://", "redis://", "rediss://")):
        raise ConfigError("GRAPHQL_APQ_STORAGE must be memory:// or redis://host:port")
    if s.graphql_trusted_documents is not None and not Path(s.graphql_trusted_documents).is_file():
        raise ConfigError(f"GRAPHQL_TRUSTED_DOCUMENTS: no such file {s.graphql_trusted_documents}")
    if s.log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(sorted(LOG_LEVELS))}")
    if s.root_path and (not s.root_path.startswith("/") or "//" in s.root_path):
        raise ConfigError("ROOT_PATH must be a path like /api (or empty)")
    for name, value in (
        ("SHUTDOWN_DRAIN_SECONDS", s.shutdown_drain_seconds),
        ("SHUTDOWN_TIMEOUT", s.shutdown_timeout),
        ("DB_STARTUP_TIMEOUT", s.db_startup_timeout),
    ):
        if value < 0:
            raise ConfigError(f"{name} must not be negative")
    if s.metrics_token is not None and len(s.metrics_token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters")
    if s.tracing and s.tracing_protocol not in ("http/protobuf", "grpc"):
        raise ConfigError("OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or grpc")
    if s.log_format not in ("text", "json"):
        raise ConfigError("LOG_FORMAT must be 'text' or 'json'")


def _tracing(env: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables ask for traces (the SDK reads the rest)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _resolve_secret(env: Mapping[str, str], secret_file: str, app_env: str) -> str | None:
    """JWT_SECRET from the environment, else the secret file, else (development) a new one.

    The file exists so that `make run` and `interview-api token` agree on a
    development secret without the user exporting anything.
    """
    if env.get("JWT_SECRET"):
        return env["JWT_SECRET"]
    path = Path(secret_file)
    if path.is_file():
        return path.read_text().strip()
    if app_env == "development":
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # Created readable by the owner only, from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        return secret
    return None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from the environment (or the given mapping) and validate it."""
    env = os.environ if env is None else env
    d = Settings()
    app_env = env.get("APP_ENV", d.app_env).strip().lower()
    secret_file = env.get("JWT_SECRET_FILE", d.jwt_secret_file)
    public_key = env.get("JWT_PUBLIC_KEY") or None
    default_algs = "RS256" if public_key and not env.get("JWT_SECRET") else "HS256"
    algorithms = tuple(
        a.strip() for a in env.get("JWT_ALGORITHMS", default_algs).split(",") if a.strip()
    )
    uses_hmac = any(a in HMAC_ALGORITHMS for a in algorithms)
    settings = Settings(
        database_url=env.get("DATABASE_URL", d.database_url),
        app_env=app_env,
        jwt_secret=_resolve_secret(env, secret_file, app_env) if uses_hmac else None,
        jwt_secret_file=secret_file,
        jwt_public_key=public_key,
        jwt_algorithms=algorithms,
        jwt_audience=env.get("JWT_AUDIENCE") or None,
        jwt_issuer=env.get("JWT_ISSUER") or None,
        cursor_secret=env.get("CURSOR_SECRET") or None,
        # Development (`make run`): room for the README's examples pasted as
        # a block; production keeps the safe default.
        rate_limits=env.get(
            "RATE_LIMITS", DEVELOPMENT_RATE_LIMITS if app_env == "development" else d.rate_limits
        ),
        rate_limit_storage=env.get("RATE_LIMIT_STORAGE", d.rate_limit_storage),
        rate_limit_timeout=_float(
            "RATE_LIMIT_TIMEOUT", env.get("RATE_LIMIT_TIMEOUT", str(d.rate_limit_timeout))
        ),
        rate_limit_breaker_seconds=_float(
            "RATE_LIMIT_BREAKER_SECONDS",
            env.get("RATE_LIMIT_BREAKER_SECONDS", str(d.rate_limit_breaker_seconds)),
        ),
        http_header_timeout=_float(
            "HTTP_HEADER_TIMEOUT", env.get("HTTP_HEADER_TIMEOUT", str(d.http_header_timeout))
        ),
        http_body_timeout=_float(
            "HTTP_BODY_TIMEOUT", env.get("HTTP_BODY_TIMEOUT", str(d.http_body_timeout))
        ),
        http_send_timeout=_float(
            "HTTP_SEND_TIMEOUT", env.get("HTTP_SEND_TIMEOUT", str(d.http_send_timeout))
        ),
        max_connections=_int("MAX_CONNECTIONS", env.get("MAX_CONNECTIONS", str(d.max_connections))),
        max_header_bytes=_int(
            "MAX_HEADER_BYTES", env.get("MAX_HEADER_BYTES", str(d.max_header_bytes))
        ),
        max_headers=_int("MAX_HEADERS", env.get("MAX_HEADERS", str(d.max_headers))),
        shutdown_drain_seconds=_non_negative(
            "SHUTDOWN_DRAIN_SECONDS",
            env.get("SHUTDOWN_DRAIN_SECONDS", str(d.shutdown_drain_seconds)),
        ),
        shutdown_timeout=_float(
            "SHUTDOWN_TIMEOUT", env.get("SHUTDOWN_TIMEOUT", str(d.shutdown_timeout))
        ),
        db_startup_timeout=_float(
            "DB_STARTUP_TIMEOUT", env.get("DB_STARTUP_TIMEOUT", str(d.db_startup_timeout))
        ),
        metrics_token=env.get("METRICS_TOKEN") or None,
        metrics=_bool("METRICS", env.get("METRICS", "true")),
        forwarded_allow_ips=env.get("FORWARDED_ALLOW_IPS", "").strip(),
        root_path=env.get("ROOT_PATH", "").strip().rstrip("/"),
        tracing=_tracing(env),
        tracing_protocol=(
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip(),
        otel_service_name=env.get("OTEL_SERVICE_NAME") or None,
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        max_active_sessions=_int(
            "MAX_ACTIVE_SESSIONS", env.get("MAX_ACTIVE_SESSIONS", str(d.max_active_sessions))
        ),
        max_body_bytes=_int("MAX_BODY_BYTES", env.get("MAX_BODY_BYTES", str(d.max_body_bytes))),
        graphql_introspection=_bool(
            "GRAPHQL_INTROSPECTION", env.get("GRAPHQL_INTROSPECTION", "true")
        ),
        graphql_max_depth=_int(
            "GRAPHQL_MAX_DEPTH", env.get("GRAPHQL_MAX_DEPTH", str(d.graphql_max_depth))
        ),
        graphql_max_aliases=_int(
            "GRAPHQL_MAX_ALIASES", env.get("GRAPHQL_MAX_ALIASES", str(d.graphql_max_aliases)), 0
        ),
        graphql_max_tokens=_int(
            "GRAPHQL_MAX_TOKENS", env.get("GRAPHQL_MAX_TOKENS", str(d.graphql_max_tokens))
        ),
        graphql_compiled=_bool("GRAPHQL_COMPILED", env.get("GRAPHQL_COMPILED", "true")),
        rest_fast_reads=_bool("REST_FAST_READS", env.get("REST_FAST_READS", "true")),
        graphql_verify_plans=_bool(
            "GRAPHQL_VERIFY_PLANS", env.get("GRAPHQL_VERIFY_PLANS", "false")
        ),
        graphql_trusted_documents=env.get("GRAPHQL_TRUSTED_DOCUMENTS") or None,
        graphql_apq_storage=env.get("GRAPHQL_APQ_STORAGE") or None,
        graphql_apq_size=_int(
            "GRAPHQL_APQ_SIZE", env.get("GRAPHQL_APQ_SIZE", str(d.graphql_apq_size))
        ),
        db_pool_size=_int("DB_POOL_SIZE", env.get("DB_POOL_SIZE", str(d.db_pool_size))),
        db_write_pool_size=_int(
            "DB_WRITE_POOL_SIZE", env.get("DB_WRITE_POOL_SIZE", str(d.db_write_pool_size))
        ),
        db_pool_timeout=_float(
            "DB_POOL_TIMEOUT", env.get("DB_POOL_TIMEOUT", str(d.db_pool_timeout))
        ),
        db_command_timeout=_float(
            "DB_COMMAND_TIMEOUT", env.get("DB_COMMAND_TIMEOUT", str(d.db_command_timeout))
        ),
        db_connect_timeout=_float(
            "DB_CONNECT_TIMEOUT", env.get("DB_CONNECT_TIMEOUT", str(d.db_connect_timeout))
        ),
        db_breaker_seconds=_float(
            "DB_BREAKER_SECONDS", env.get("DB_BREAKER_SECONDS", str(d.db_breaker_seconds))
        ),
        log_level=env.get("LOG_LEVEL", d.log_level).strip().upper(),
        log_format=env.get("LOG_FORMAT", d.log_format).strip().lower(),
        access_log=_bool("ACCESS_LOG", env.get("ACCESS_LOG", "true")),
        cors_origins=_origins(env.get("CORS_ORIGINS")),
        event_retention=_duration("EVENT_RETENTION", env.get("EVENT_RETENTION", "7d")),
        idempotency_ttl=_duration("IDEMPOTENCY_TTL", env.get("IDEMPOTENCY_TTL", "24h")),
        max_subscriptions_per_connection=_int(
            "MAX_SUBSCRIPTIONS_PER_CONNECTION",
            env.get("MAX_SUBSCRIPTIONS_PER_CONNECTION", str(d.max_subscriptions_per_connection)),
        ),
        ws_init_timeout=_float(
            "WS_INIT_TIMEOUT", env.get("WS_INIT_TIMEOUT", str(d.ws_init_timeout))
        ),
        ws_send_timeout=_float(
            "WS_SEND_TIMEOUT", env.get("WS_SEND_TIMEOUT", str(d.ws_send_timeout))
        ),
        sse_heartbeat_seconds=_float(
            "SSE_HEARTBEAT_SECONDS",
            env.get("SSE_HEARTBEAT_SECONDS", str(d.sse_heartbeat_seconds)),
        ),
    )
    return settings.validated()
