"""The OpenAPI document, completed where Litestar's generator cannot know.

* Every error a route can answer is listed with a real example of the
  contract's body (the messages are the service's own constants): the
  route-specific ones (400, 403, 404, 409) by the controllers through
  :func:`errors`, and those the pipeline gives any route (401, 413, 415, 429,
  500, 503) here.
* Every answer documents ``X-Request-ID`` and the ``RateLimit-*`` headers
  (``Retry-After`` on 429); ``/health`` documents its 503.
* Request bodies refuse unknown fields (``additionalProperties: false``), ids
  in bodies are UUIDs, and bounds of zero (which the generator drops as
  falsy) are restored from the structs themselves.

The document is refined once, in place, when the app starts.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Example,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Parameter,
    Reference,
    Schema,
)
from litestar.openapi.spec import (
    OpenAPIMediaType as MediaType,
)

from app import errors as e
from app.context import ErrorBody, error_body
from app.domain import records
from app.domain.paging import BAD_CURSOR, WINDOW_ORDER_MESSAGE
from app.domain.sessions import LIMIT_MESSAGE
from app.idempotency import MISMATCH as KEY_REUSED

UUID_FIELDS = {"sessionId"}

# status -> (description, [(example name, message), ...])
ERRORS: dict[int, tuple[str, list[tuple[str, str | list[str]]]]] = {
    400: (
        "Validation failed, a malformed id, or a forbidden status transition",
        [
            ("malformed id", e.INVALID_UUID),
            ("a field is missing", "jobContext.title: field required"),
            (
                "several problems",
                ["jobContext.title: field required", "settings.foo: unknown field"],
            ),
            ("completed is final", e.invalid_transition("completed", "active")),
            ("bad limit", LIMIT_MESSAGE),
            ("bad window", WINDOW_ORDER_MESSAGE),
            ("bad cursor", BAD_CURSOR),
        ],
    ),
    401: ("Missing, malformed, expired or forged bearer token", [("no token", "Unauthorized")]),
    403: ("The session belongs to another user", [("not yours", e.ACCESS_DENIED)]),
    404: (
        "No such session (or interaction)",
        [("no session", e.SESSION_NOT_FOUND), ("no interaction", e.INTERACTION_NOT_FOUND)],
    ),
    409: (
        "Too many active sessions, a concurrent modification, or a request with the "
        "same Idempotency-Key still running",
        [
            ("active cap", e.too_many_active(10)),
            ("lost a race", e.MODIFIED_CONCURRENTLY),
            ("key in progress", e.KEY_IN_PROGRESS),
        ],
    ),
    422: (
        "The Idempotency-Key was used before for another request (method, path or body)",
        [("key reused", KEY_REUSED)],
    ),
    413: (
        "The body is larger than MAX_BODY_BYTES",
        [("too large", "Request Entity Too Large")],
    ),
    415: (
        "The body is not JSON (Content-Type must be application/json)",
        [("not JSON", "Content-Type must be application/json")],
    ),
    429: (
        "Rate limit exceeded; retry after Retry-After seconds",
        [("too many", "Rate limit exceeded: retry in 12 seconds")],
    ),
    500: ("An unexpected error (logged with the request id)", [("crash", e.INTERNAL_ERROR)]),
    503: (
        "The database cannot be reached",
        [("database down", "Service temporarily unavailable")],
    ),
}


def _examples(status: int, names: list[str] | None = None) -> list[Example]:
    return [
        Example(summary=name, value=msgspec.to_builtins(error_body(status, message)))
        for name, message in ERRORS[status][1]
        if names is None or name in names
    ]


def errors(*codes: int, **only: list[str]) -> dict[int, ResponseSpec]:
    """The route-specific error answers of a route, with real examples.

    ``only`` narrows a status's examples, e.g. ``s404=["no interaction"]``.
    """
    out = {}
    for code in codes:
        out[code] = ResponseSpec(
            data_container=ErrorBody,
            description=ERRORS[code][0],
            generate_examples=False,
            examples=_examples(code, only.get(f"s{code}")),
        )
    return out


def _header(description: str, kind: OpenAPIType = OpenAPIType.STRING) -> OpenAPIHeader:
    return OpenAPIHeader(schema=Schema(type=kind), description=description)


HEADERS = {
    "X-Request-ID": _header(
        "The request's id: the client's X-Request-ID if it sent one, else a new one"
    ),
    "RateLimit-Limit": _header("Requests allowed in the tightest window", OpenAPIType.INTEGER),
    "RateLimit-Remaining": _header("Requests left in that window", OpenAPIType.INTEGER),
    "RateLimit-Reset": _header("Seconds until that window has room again", OpenAPIType.INTEGER),
    "Retry-After": _header("Seconds to wait before retrying", OpenAPIType.INTEGER),
    "Idempotent-Replayed": _header(
        "true: the stored answer to an earlier request with this Idempotency-Key"
    ),
}

IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in=ParamType.HEADER,
    required=False,
    description=(
        "Makes the write safe to retry: 1 to 255 visible ASCII characters, unique per "
        "request (a UUID). A repeat of the same request with the same key gets the first "
        "answer again (with Idempotent-Replayed: true) and changes nothing; the same key "
        "with another request is 422; while the first is running, 409. Keys are kept "
        "IDEMPOTENCY_TTL (24 h) per user."
    ),
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255, pattern=r"^[!-~]+$"),
)


def _ref(name: str) -> Reference:
    return Reference(ref=f"#/components/headers/{name}")


def _error_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=ERRORS[status][0],
        content={
            "application/json": MediaType(
                schema=Reference(ref="#/components/schemas/ErrorBody"),
                examples={x.summary or str(i): x for i, x in enumerate(_examples(status))},
            )
        },
    )


def _closed_structs() -> set[str]:
    names: set[str] = set()
    pending: list[type] = [records._Input]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


def _zero_bounds(struct: type) -> dict[str, dict[str, float]]:
    """External field name -> {"minimum"/"maximum": 0} for bounds equal to zero."""
    out: dict[str, dict[str, float]] = {}
    info = msgspec.inspect.type_info(struct)
    if not isinstance(info, msgspec.inspect.StructType):
        return out
    for f in info.fields:
        t = f.type
        if isinstance(t, msgspec.inspect.UnionType):
            t = next((x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)), t)
        bounds: dict[str, float] = {}
        for attr, key in (("ge", "minimum"), ("le", "maximum")):
            if getattr(t, attr, None) == 0:
                bounds[key] = 0
        if bounds:
            out[f.encode_name] = bounds
    return out


def _refine_components(app: Litestar) -> None:
    schema = app.openapi_schema
    components = (schema.components.schemas or {}) if schema.components else {}
    closed = _closed_structs()
    for name, component in components.items():
        if not isinstance(component, Schema) or name not in closed:
            continue
        component.additional_properties = False
        zero = _zero_bounds(getattr(records, name))
        for prop_name, prop in (component.properties or {}).items():
            if not isinstance(prop, Schema):
                continue
            if prop_name in UUID_FIELDS:
                prop.format = OpenAPIFormat.UUID
            for key, value in zero.get(prop_name, {}).items():
                setattr(prop, key, value)


def _refine_health(operation: Any) -> None:
    ok = operation.responses["200"]
    ok.description = "The service and its database answer"
    ok.content = {
        "application/json": MediaType(
            schema=Reference(ref="#/components/schemas/Health"),
            example={"status": "ok", "database": "ok"},
        )
    }
    operation.responses["503"] = OpenAPIResponse(
        description="The database does not answer (the contract's error fields, and the health)",
        content={
            "application/json": MediaType(
                schema=Reference(ref="#/components/schemas/Unhealthy"),
                example={
                    "statusCode": 503,
                    "message": "Database unavailable",
                    "error": "Service Unavailable",
                    "status": "unavailable",
                    "database": "unavailable",
                },
            )
        },
    )


def _refine_ready(operation: Any) -> None:
    ok = operation.responses["200"]
    ok.description = "Ready for traffic: the database answers, migrations at head, not draining"
    ok.content = {
        "application/json": MediaType(
            schema=Reference(ref="#/components/schemas/Ready"), example={"status": "ready"}
        )
    }
    operation.responses["503"] = OpenAPIResponse(
        description="Not ready (the contract's error fields, and the reason)",
        content={
            "application/json": MediaType(
                schema=Reference(ref="#/components/schemas/NotReady"),
                example={
                    "statusCode": 503,
                    "message": "Not ready: draining: the server is shutting down",
                    "error": "Service Unavailable",
                    "status": "not ready",
                    "reason": "draining: the server is shutting down",
                },
            )
        },
    )


PROBES = ("/health", "/ready")


def _may_be_absent(body: Any) -> bool:
    """A body typed ``X | None`` by its handler (the state routes' ``NoFields``)."""
    for media in (body.content or {}).values():
        schema = media.schema
        options = getattr(schema, "one_of", None) or []
        if any(getattr(o, "type", None) == OpenAPIType.NULL for o in options):
            return True
    return False


def refine_openapi(app: Litestar) -> None:
    _refine_components(app)
    components = app.openapi_schema.components
    components.headers = {**(components.headers or {}), **HEADERS}
    for path, item in (app.openapi_schema.paths or {}).items():
        for method in ("get", "head", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            if method == "head":
                operation.responses = {
                    "200": OpenAPIResponse(description="The service and its database answer"),
                    "503": OpenAPIResponse(description="The database does not answer"),
                }
            responses = operation.responses if operation.responses is not None else {}
            operation.responses = responses
            body = operation.request_body
            if body is not None and _may_be_absent(body):
                body.required = False
                body.description = "Optional: nothing, or an empty JSON object"
            if method in ("post", "put", "delete") and path.startswith("/interview-sessions"):
                operation.parameters = [*(operation.parameters or []), IDEMPOTENCY_KEY]
                for status in (409, 422):
                    responses.setdefault(str(status), _error_response(status))
            if path == "/health" and method == "get":
                _refine_health(operation)
            elif path == "/ready" and method == "get":
                _refine_ready(operation)
            elif path not in PROBES:
                common = [429, 500, 503]
                if operation.security:
                    common.append(401)
                if operation.request_body is not None:
                    common += [413, 415]
                for status in common:
                    responses.setdefault(str(status), _error_response(status))
            for status, response in responses.items():
                if not isinstance(response, OpenAPIResponse):
                    continue
                names = ["X-Request-ID"]
                if path not in PROBES:  # not rate limited
                    names += ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
                if status == "429":
                    names.append("Retry-After")
                if method in ("post", "put", "delete") and path.startswith("/interview-sessions"):
                    names.append("Idempotent-Replayed")
                response.headers = {**(response.headers or {}), **{n: _ref(n) for n in names}}
            responses_sorted = dict(sorted(responses.items()))
            operation.responses = responses_sorted
