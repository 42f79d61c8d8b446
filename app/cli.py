"""interview-api serve | migrate | token | export-schema | plan"""

from __future__ import annotations

import argparse
import logging
import os
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
    from app.db.migrate import upgrade_sync

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
    upgrade_sync(settings.database_url)
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
        access_log=False,
        log_config=None,  # uvicorn's own lines go through our one-line formatter too
        proxy_headers=False,
        # A WebSocket frame over MAX_BODY_BYTES closes the socket (1009).
        ws_max_size=settings.max_body_bytes,
        # No permessage-deflate: events are small, and a compressor per socket
        # costs ~40 KiB of memory per idle subscriber (bench.live).
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
    )


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

    export = sub.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", default=None, help="write to this file instead of stdout")
    export.set_defaults(func=cmd_export_schema)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
