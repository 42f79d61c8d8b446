"""interview-api serve | migrate | token | export-schema | plan | backup"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from app.config import ConfigError, Settings, load_settings
from app.logs import configure_logging


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"interview-api: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_migrate(_: argparse.Namespace) -> None:
    from app.db.migrate import upgrade_sync

    settings = _settings()
    upgrade_sync(settings.database_url)
    print("database is up to date")


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.auth import Authenticator
    from app.operations import migrate_when_ready

    settings = _settings()
    try:
        Authenticator(settings)  # a key that cannot verify tokens stops us here
        if settings.graphql_trusted_documents:
            from app.resolvers.persisted import load_manifest

            load_manifest(settings.graphql_trusted_documents)  # so does a bad manifest
    except ValueError as exc:
        print(f"interview-api: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    migrate_when_ready(settings)  # waits DB_STARTUP_TIMEOUT for the database
    if args.workers > 1 and not settings.metrics_dir:
        # Each worker writes its metrics here; a scrape of any sums them all.
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="interview-api-metrics-")
    log = logging.getLogger("app")
    log.info(
        "serving on http://%s:%s (GraphQL at /graphql, OpenAPI at /schema)", args.host, args.port
    )
    if settings.app_env == "development" and settings.uses_hmac and not _env_secret():
        log.info(
            "development secret in %s; get a token with: .venv/bin/interview-api token",
            settings.jwt_secret_file,
        )
    from app.serving import GuardedHttpToolsProtocol, GuardedWebSocketProtocol

    # uvicorn raises the signal that stopped it again once it has shut down,
    # with the handler that was in place before it ran: a drained, orderly
    # stop on SIGTERM then exits 0 (operations.md), not "killed by SIGTERM".
    signal.signal(signal.SIGTERM, _stopped)

    uvicorn.run(
        "app.main:create_app_from_env",
        factory=True,
        # Read timeouts, head caps, the connection cap and the slow-reader
        # rule (app/serving.py).
        http=GuardedHttpToolsProtocol,
        ws=GuardedWebSocketProtocol,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        access_log=False,  # ours (app/access.py) names routes, users and strategies
        log_config=None,  # uvicorn's own lines go through our one-line formatter too
        # X-Forwarded-For/-Proto believed only from FORWARDED_ALLOW_IPS (default: nobody).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        # A WebSocket frame over MAX_BODY_BYTES closes the socket (1009).
        ws_max_size=settings.max_body_bytes,
        # No permessage-deflate: events are small, and a compressor per socket
        # costs ~40 KiB of memory per idle subscriber (bench.live).
        ws_per_message_deflate=False,
        # After the drain (app/operations.py): requests in flight get this long.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout)),
    )


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _env_secret() -> bool:

    return bool(os.environ.get("JWT_SECRET"))


def cmd_token(args: argparse.Namespace) -> None:
    from app.auth import issue_token

    settings = _settings()
    private_key = Path(args.private_key).read_text() if args.private_key else None
    try:
        print(issue_token(settings, args.sub, args.ttl, private_key))
    except ValueError as exc:
        print(f"interview-api: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_export_schema(args: argparse.Namespace) -> None:
    from app.resolvers.schema import export_sdl

    sdl = export_sdl()
    if args.output:
        Path(args.output).write_text(sdl)
    else:
        sys.stdout.write(sdl)


def cmd_plan(args: argparse.Namespace) -> None:
    """Print the compiled plan of a query (its generated source), or why it has none."""
    from app.resolvers.documents import Documents
    from app.resolvers.plans import CompiledQueries
    from app.resolvers.schema import build_schema

    schema = build_schema()  # the default limits: the plans do not depend on the rest
    prepared = Documents(schema).get(args.query)
    if prepared.errors:
        for error in prepared.errors:
            print(f"invalid: {error.message}")
        raise SystemExit(1)
    assert prepared.document is not None
    operation = prepared.operation(args.operation_name)
    if isinstance(operation, str):
        print(f"invalid: {operation}")
        raise SystemExit(1)
    plans = CompiledQueries(schema)
    print(plans.explain(prepared.document, operation))


def cmd_backup(args: argparse.Namespace) -> None:
    """An online, consistent copy of the SQLite database (SQLite's backup API),
    safe while the server runs. PostgreSQL: use pg_dump (README, "Backups")."""
    import sqlite3

    from app.db.sqlite import database_path

    settings = _settings()
    if not settings.is_sqlite:
        print(
            "interview-api: backup copies SQLite databases; for PostgreSQL use pg_dump "
            "(README, Backups)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    source_path = database_path(settings.database_url)
    if not source_path.is_file():
        print(f"interview-api: no database at {source_path}", file=sys.stderr)
        raise SystemExit(1)
    target = Path(args.path)
    if target.exists():
        print(f"interview-api: {target} exists; choose a new file", file=sys.stderr)
        raise SystemExit(1)
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        # Pages copied in steps; a writer in between makes it start over, so
        # what is written is one consistent snapshot.
        source.backup(copy, pages=1024)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    print(f"backed up {source_path} to {target}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interview-api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="apply migrations, then serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a JWT the server accepts")
    token.add_argument("--sub", default="dev-user", help="user id (the token's sub claim)")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.add_argument(
        "--private-key", default=None, help="PEM file to sign with (RS256/ES256 setups)"
    )
    token.set_defaults(func=cmd_token)

    plan = sub.add_parser("plan", help="print the compiled plan of a GraphQL query")
    plan.add_argument("query", help="the query document")
    plan.add_argument("--operation-name", default=None)
    plan.set_defaults(func=cmd_plan)

    backup = sub.add_parser("backup", help="copy the SQLite database while the server runs")
    backup.add_argument("path", help="the new file to write")
    backup.set_defaults(func=cmd_backup)

    export = sub.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", default=None, help="write to this file instead of stdout")
    export.set_defaults(func=cmd_export_schema)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
