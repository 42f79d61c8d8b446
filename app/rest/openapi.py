"""What Litestar's OpenAPI generator cannot say about msgspec structs.

Request bodies refuse unknown fields (``additionalProperties: false``), ids in
bodies are UUIDs (``format: uuid``), and bounds of zero (``ge=0``), which the
generator drops as falsy, are restored from the structs themselves. The
document is refined once, in place, when the app starts.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.openapi.spec import OpenAPIFormat, Schema

from app.domain import records

UUID_FIELDS = {"sessionId"}


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


def refine_openapi(app: Litestar) -> None:
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
