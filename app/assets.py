"""The browser files GraphiQL and the API docs need, served by this server.

They come from the npm registry at install time (``make install`` runs
``npm ci`` in ``app/static``, pinned by ``package-lock.json``; nothing of them
is committed), and are served under ``/static/<package>@<version>/<file>`` with
a year of caching (the version is in the URL). Only the files listed here are
served. Without npm (a laptop without Node.js) the pages fall back to the
same pinned versions on a CDN, and the server says so once at start.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("app.assets")

ROOT = Path(__file__).parent / "static"
CDN = "https://cdn.jsdelivr.net/npm"


@dataclass(frozen=True)
class Asset:
    package: str
    file: str  # inside the package


FILES = {
    "graphiql.js": Asset("graphiql", "graphiql.min.js"),
    "graphiql.css": Asset("graphiql", "graphiql.min.css"),
    "react.js": Asset("react", "umd/react.production.min.js"),
    "react-dom.js": Asset("react-dom", "umd/react-dom.production.min.js"),
    "graphql-ws.js": Asset("graphql-ws", "umd/graphql-ws.min.js"),
    "swagger-ui.js": Asset("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger-ui-preset.js": Asset("swagger-ui-dist", "swagger-ui-standalone-preset.js"),
    "swagger-ui.css": Asset("swagger-ui-dist", "swagger-ui.css"),
    "favicon.png": Asset("swagger-ui-dist", "favicon-32x32.png"),
    "redoc.js": Asset("redoc", "bundles/redoc.standalone.js"),
}


# Text replaced in served files (see Assets.patched).
PATCHES = {
    b"https://cdn.redoc.ly/redoc/logo-mini.svg": (
        b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"
    ),
}


class Assets:
    def __init__(self, root: Path = ROOT, root_path: str = "") -> None:
        self.root = root
        self.root_path = root_path  # ROOT_PATH: the prefix a proxy serves us under
        manifest = json.loads((root / "package.json").read_text())
        self.versions: dict[str, str] = manifest["dependencies"]
        self.local = all(self._installed(a) is not None for a in FILES.values())
        # /static/<package>@<version>/<file> -> the file on disk
        self._patches: dict[str, bytes] = {}
        self._patched_paths = {self._local_path(FILES["redoc.js"])}
        self._served = {
            self._local_path(a): path
            for a in FILES.values()
            if (path := self._installed(a)) is not None
        }

    def _installed(self, asset: Asset) -> Path | None:
        package = self.root / "node_modules" / asset.package
        try:
            installed = json.loads((package / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            return None
        path = package / asset.file
        return path if installed == self.versions[asset.package] and path.is_file() else None

    def _local_path(self, asset: Asset) -> str:
        return f"{asset.package}@{self.versions[asset.package]}/{asset.file}"

    def url(self, name: str) -> str:
        asset = FILES[name]
        if self.local:
            return f"{self.root_path}/static/{self._local_path(asset)}"
        return f"{CDN}/{asset.package}@{self.versions[asset.package]}/{asset.file}"

    def file(self, path: str) -> tuple[Path, str] | None:
        """The file behind ``/static/<path>`` and its media type, if it is one we serve."""
        found = self._served.get(path)
        if found is None:
            return None
        media = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        return found, media

    def patched(self, path: str) -> bytes | None:
        """A served file whose text this server changes: ReDoc's bundle fetches
        its sidebar logo from Redocly's CDN, so that URL becomes an empty inline
        image (the docs stay offline and ask nothing of a third party)."""
        found = self._served.get(path)
        if found is None or path not in self._patched_paths:
            return None
        cached = self._patches.get(path)
        if cached is None:
            cached = found.read_bytes()
            for old, new in PATCHES.items():
                cached = cached.replace(old, new)
            self._patches[path] = cached
        return cached

    def warn_if_remote(self) -> None:
        if not self.local:
            log.warning(
                "GraphiQL and the API docs load their files from %s: run `make install` "
                "with Node.js/npm available to serve them from this server (works offline)",
                CDN,
            )
