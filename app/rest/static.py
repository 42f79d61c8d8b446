"""``/static/...``: the pinned browser files of GraphiQL and the API docs (see app.assets)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File

from app.assets import Assets

# The version is part of every URL: a file never changes under its URL.
CACHE_FOREVER = {"Cache-Control": "public, max-age=31536000, immutable"}


def static_route(assets: Assets) -> Any:
    @get("/static/{path:path}", include_in_schema=False, sync_to_thread=False)
    def static(path: FromPath[str]) -> File | Response[bytes]:
        found = assets.file(path.lstrip("/"))
        if found is None:
            raise NotFoundException()
        file, media = found
        patched = assets.patched(path.lstrip("/"))
        if patched is not None:
            return Response(patched, media_type=media, headers=CACHE_FOREVER)
        return File(
            path=file, media_type=media, headers=CACHE_FOREVER, content_disposition_type="inline"
        )

    return static
