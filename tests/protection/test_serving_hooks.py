"""app/serving.py subclasses uvicorn's protocols; the hooks it overrides or
calls are listed in UVICORN_HOOKS. uvicorn is pinned below its next minor
release (pyproject.toml); this fails if a hook is gone or changed shape, so
an upgrade is a deliberate step."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import uvicorn
from uvicorn.server import ServerState

from app.serving import UVICORN_HOOKS, GuardedHttpToolsProtocol, GuardedWebSocketProtocol

# The parameters (after self) each hook has in the uvicorn release this was written for.
EXPECTED = {
    "data_received": ["data"],
    "on_header": ["name", "value"],
    "on_message_begin": [],
    "on_headers_complete": [],
    "on_message_complete": [],
    "connection_made": ["transport"],
    "connection_lost": ["exc"],
    "pause_writing": [],
    "resume_writing": [],
    "handle_websocket_upgrade": [],
    "send_400_response": ["msg"],
}


def test_uvicorn_is_the_pinned_minor():
    assert version("uvicorn").startswith("0.55."), version("uvicorn")


def test_every_hook_is_there_with_its_parameters():
    for cls, hooks in UVICORN_HOOKS.items():
        for name in hooks:
            hook = getattr(cls, name, None)
            assert callable(hook), f"{cls.__name__}.{name} is gone"
            params = list(inspect.signature(hook).parameters)[1:]
            assert params == EXPECTED[name], (cls.__name__, name, params)


async def test_the_attributes_the_guards_use_are_there(monkeypatch):
    from tests.conftest import TEST_SECRET

    monkeypatch.setenv("JWT_SECRET", TEST_SECRET)  # the guards read the settings

    async def app(scope, receive, send):  # pragma: no cover - never called
        return None

    config = uvicorn.Config(app=app, http=GuardedHttpToolsProtocol, ws=GuardedWebSocketProtocol)
    config.load()
    http = GuardedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    for name in ("transport", "loop", "parser", "cycle", "app", "connections", "headers", "flow"):
        assert hasattr(http, name), name
    assert config.ws_protocol_class is GuardedWebSocketProtocol
    ws = GuardedWebSocketProtocol(config=config, server_state=ServerState(), app_state={})
    for name in ("transport", "loop", "writable"):
        assert hasattr(ws, name), name
