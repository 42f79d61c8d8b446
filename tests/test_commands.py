"""Every update path and every limit of the commands, generated from the
command structs of app/domain/records.py (``msgspec.inspect``), through both
faces, on both databases.

* Update paths: for every field of UpdateSession and UpdateInteraction, and
  every field of the structs they replace, an update that changes only that
  one (to each other enum member, to null where it takes null, to another
  sample value, or, inside a replaced struct, left out: its default) is
  answered, stored and read back through REST and GraphQL, and nothing else
  of the record changes. A field added to an update command without its
  update path (input type, mapping, column, save) fails here.
* Limits: every constraint the structs declare (lengths of strings and lists,
  bounds of numbers, enum members, required fields, non-null fields) gives
  values at the limit, which are accepted and stored as sent, and a value just
  beyond it, which is refused (REST: 400 naming the field; GraphQL:
  ``BAD_REQUEST``) with nothing stored. A constraint of a kind the walk does
  not know fails, so a new one cannot go untested; the documented numbers of
  the contract are checked against the structs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import msgspec
import pytest
from msgspec import inspect as mi

from app.domain import records as r
from tests.api import Api, assert_field_error, is_timestamp
from tests.full_samples import text
from tests.test_round_trip import as_graphql_input, as_rest, full, read_back, sample, selection

FACES = ("rest", "graphql")
CREATES: tuple[type[msgspec.Struct], ...] = (r.CreateSession, r.CreateInteraction, r.RecordMetrics)
UPDATES: tuple[type[msgspec.Struct], ...] = (r.UpdateSession, r.UpdateInteraction)
COMMANDS = CREATES + UPDATES
# The value objects the commands carry: the walks below must reach each.
NESTED = (r.JobContext, r.SessionSettings, r.QuestionClassification, r.GeneratedResponse)

# What each command writes, where REST takes it, and the record it changes.
ROUTES: dict[type[msgspec.Struct], tuple[str, str]] = {
    r.CreateSession: ("POST", "/interview-sessions"),
    r.UpdateSession: ("PUT", "/interview-sessions/{id}"),
    r.CreateInteraction: ("POST", "/interview-sessions/interactions"),
    r.UpdateInteraction: ("PUT", "/interview-sessions/interactions/{id}"),
    r.RecordMetrics: ("POST", "/interview-sessions/metrics"),
}
RECORDS: dict[type[msgspec.Struct], tuple[str, type[msgspec.Struct]]] = {
    r.CreateSession: ("session", r.Session),
    r.UpdateSession: ("session", r.Session),
    r.CreateInteraction: ("interaction", r.Interaction),
    r.UpdateInteraction: ("interaction", r.Interaction),
    r.RecordMetrics: ("metric", r.Metric),
}
# Record fields a change may set besides its own: completing sets endedAt.
SIDE_EFFECTS: dict[tuple[str, Any], tuple[str, ...]] = {("status", "completed"): ("endedAt",)}

Path = tuple[str | int, ...]
OMIT: Any = object()  # as a value to put: leave the key out


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Many sessions per user here; the cap on active ones is tested elsewhere.
    return {"max_active_sessions": 10_000}


@pytest.fixture
def api(client: httpx.AsyncClient, new_user: Any) -> Api:
    return Api(client, new_user())


# ---------------------------------------------------------------- type walking


def bare(t: mi.Type) -> mi.Type:
    """An optional field's value type (None left out)."""
    if isinstance(t, mi.UnionType):
        [t] = [x for x in t.types if not isinstance(x, mi.NoneType)]
    return t


def nullable(t: mi.Type) -> bool:
    return isinstance(t, mi.UnionType) and any(isinstance(x, mi.NoneType) for x in t.types)


def dotted(path: Path) -> str:
    """``("jobContext", "requirements", 0)`` -> ``jobContext.requirements[0]`` (the messages' form)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def get_in(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def put_in(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``path`` (or the key left out, for OMIT)."""
    out = copy.deepcopy(value)
    *head, last = path
    target = get_in(out, tuple(head))
    if new is OMIT:
        del target[last]
    else:
        target[last] = new
    return out


def field_default(f: mi.Field) -> Any:
    """A field's default, as JSON (OMIT: none, an absent field stays absent)."""
    if f.default_factory is not msgspec.NODEFAULT:
        return msgspec.to_builtins(f.default_factory())
    if f.default is msgspec.NODEFAULT:
        return OMIT
    return msgspec.to_builtins(f.default)


def non_default(t: mi.Type, value: Any) -> Any:
    """``value`` (a sample of ``t``) with every struct field that holds its
    default, however deep, set to another value: then leaving one out of a
    replacement is a change."""
    t = bare(t)
    if isinstance(t, mi.ListType):
        return [non_default(t.item_type, v) for v in value]
    if not isinstance(t, mi.StructType):
        return value
    out = dict(value)
    for f in t.fields:
        if f.encode_name not in out:
            continue
        v = non_default(f.type, out[f.encode_name])
        if not f.required and v == field_default(f):
            v = other_values(f.type, v)[0]
        out[f.encode_name] = v
    return out


def full_non_default(command: type[msgspec.Struct], seed: int) -> dict[str, Any]:
    return non_default(mi.type_info(command), full(command, seed))  # type: ignore[no-any-return]


def command_body(command: type[msgspec.Struct], seed: int, sid: str | None) -> dict[str, Any]:
    body = full(command, seed)
    names = {f.encode_name for f in mi.type_info(command).fields}  # type: ignore[attr-defined]
    if "sessionId" in names:
        body["sessionId"] = sid
    return body


# ---------------------------------------------------------------- the two faces


@dataclass
class Answer:
    ok: bool
    record: dict[str, Any] | None  # REST form
    response: httpx.Response | None  # REST
    errors: list[dict[str, Any]] | None  # GraphQL


def mutation(command: type[msgspec.Struct], fields: str = "id") -> str:
    """The GraphQL mutation of a command: CreateSession -> createSession(input: CreateSessionInput!)."""
    name = command.__name__
    field = name[0].lower() + name[1:]
    if name.startswith("Update"):
        return (
            f"mutation($id: ID!, $i: {name}Input!) {{ {field}(id: $id, input: $i) {{ {fields} }} }}"
        )
    return f"mutation($i: {name}Input!) {{ {field}(input: $i) {{ {fields} }} }}"


async def send(
    api: Api,
    face: str,
    command: type[msgspec.Struct],
    body: dict[str, Any],
    target: str | None = None,
    graphql_body: dict[str, Any] | None = None,
) -> Answer:
    """Run a command through one face; GraphQL answers every field, in REST form."""
    _kind, record = RECORDS[command]
    if face == "rest":
        method, path = ROUTES[command]
        res = await api.request(method, path.format(id=target), json=body)
        ok = res.status_code in (200, 201)
        return Answer(ok, res.json() if ok else None, res, None)
    variables: dict[str, Any] = {
        "i": as_graphql_input(body, mi.type_info(command)) if graphql_body is None else graphql_body
    }
    if target is not None:
        variables["id"] = target
    answer = await api.graphql(mutation(command, selection(record)), variables)
    if answer.get("errors"):
        return Answer(False, None, None, answer["errors"])
    [value] = answer["data"].values()
    return Answer(True, as_rest(value, mi.type_info(record)), None, None)


async def read_rest(api: Api, kind: str, sid: str, rid: str) -> dict[str, Any]:
    if kind == "session":
        res = await api.get(sid)
        assert res.status_code == 200, res.text
        return res.json()  # type: ignore[no-any-return]
    path = f"/interview-sessions/{sid}/{'interactions' if kind == 'interaction' else 'metrics'}"
    [found] = [x for x in (await api.request("GET", path)).json() if x["id"] == rid]
    return found  # type: ignore[no-any-return]


async def count(api: Api, kind: str, sid: str | None) -> int:
    if kind == "session":
        return len((await api.list_sessions()).json())
    path = f"/interview-sessions/{sid}/{'interactions' if kind == 'interaction' else 'metrics'}"
    return len((await api.request("GET", path)).json())


# ---------------------------------------------------------------- update paths


@dataclass(frozen=True)
class Change:
    label: str
    path: Path  # in the record
    body: dict[str, Any]  # the update, REST form
    value: Any  # what the record holds at ``path`` afterwards


def candidates(t: mi.Type) -> Iterator[Any]:
    """Valid values of ``t``: the samples (which vary with the seed, but for floats), ..."""
    yield from (sample(t, seed) for seed in range(1, 50))
    if isinstance(t, mi.FloatType):
        low = t.ge if t.ge is not None else 0.0
        high = t.le if t.le is not None else 1000.0
        yield from (round(low + (high - low) * k / 8, 3) for k in range(1, 8))


def other_values(t: mi.Type, current: Any) -> list[Any]:
    """Valid values other than ``current``: each other member of an enum, or
    another sample; and null when the field takes it."""
    kind = bare(t)
    if isinstance(kind, mi.EnumType):
        values = [m.value for m in kind.cls if m.value != current]
    else:
        values = [next(v for v in candidates(kind) if v != current)]
    if nullable(t) and current is not None:
        values.append(None)
    return values


def changes(command: type[msgspec.Struct], current: dict[str, Any]) -> list[Change]:
    """Every change an update command can make to ``current``, one field at a time."""
    out = []
    for f in mi.type_info(command).fields:  # type: ignore[attr-defined]
        name, kind = f.encode_name, bare(f.type)
        if isinstance(kind, mi.StructType):  # replaced whole: change one of its fields
            whole = current[name]
            for g in kind.fields:
                key = g.encode_name
                for value in other_values(g.type, whole[key]):
                    body = {name: {**whole, key: value}}
                    out.append(Change(f"{name}.{key}={value!r:.40}", (name, key), body, value))
                default = field_default(g)
                if default is not OMIT:  # left out of the replacement: its default
                    rest = {k: v for k, v in whole.items() if k != key}
                    assert default != whole[key], f"{name}.{key}: the sample is the default"
                    out.append(Change(f"{name}.{key} left out", (name, key), {name: rest}, default))
        else:
            for value in other_values(f.type, current[name]):
                out.append(Change(f"{name}={value!r:.40}", (name,), {name: value}, value))
    return out


def differences(expected: Any, got: Any, path: Path = ()) -> list[str]:
    """Where two JSON values differ, as ``path: expected -> got``."""
    if isinstance(expected, dict) and isinstance(got, dict):
        keys = list(expected) + [k for k in got if k not in expected]
        return [
            d
            for k in keys
            for d in differences(expected.get(k, OMIT), got.get(k, OMIT), (*path, k))
        ]
    if expected == got:
        return []
    show = {id(OMIT): "(absent)"}
    return [
        f"{dotted(path) or '.'}: {show.get(id(expected), repr(expected)):.60}"
        f" -> {show.get(id(got), repr(got)):.60}"
    ]


async def fresh(api: Api, command: type[msgspec.Struct], sid: str | None) -> tuple[str, str]:
    """A new record with every field set, for an update command: (session id, record id)."""
    if command is r.UpdateSession:
        s = await api.new_session(**full_non_default(r.CreateSession, 1))
        return s["id"], s["id"]
    assert command is r.UpdateInteraction and sid is not None, command
    i = await api.new_interaction(sid, **full_non_default(r.CreateInteraction, 2))
    res = await api.update_interaction(i["id"], full_non_default(r.UpdateInteraction, 4))
    assert res.status_code == 200, res.text
    return sid, i["id"]


async def check_update_paths(api: Api, face: str, command: type[msgspec.Struct]) -> list[str]:
    """Every change of :func:`changes`, each on a fresh record: what went wrong."""
    kind, record = RECORDS[command]
    sid = None if kind == "session" else (await api.new_session())["id"]
    sid, rid = await fresh(api, command, sid)
    todo = changes(command, (await read_rest(api, kind, sid, rid)))
    assert todo, command
    problems: list[str] = []
    for change in todo:
        sid, rid = await fresh(api, command, sid)
        before, before_gql = await read_back(api, kind, record, sid, rid)
        assert before == before_gql
        answer = await send(api, face, command, change.body, rid)
        if not answer.ok:
            why = answer.errors or answer.response.text  # type: ignore[union-attr]
            problems.append(f"{command.__name__}.{change.label}: refused: {why}")
            continue
        after, after_gql = await read_back(api, kind, record, sid, rid)
        expected = put_in(before, change.path, change.value)
        also = [v for (k, x), v in SIDE_EFFECTS.items() if (k, x) == (change.path[0], change.value)]
        for name in (name for names in also for name in names):
            assert after[name] is not None and is_timestamp(after[name]), (change.label, after)
            expected[name] = after[name]
        for seen, got in (("answered", answer.record), ("REST", after), ("GraphQL", after_gql)):
            if got != expected:
                wrong = differences(expected, got)
                problems.append(f"{command.__name__}.{change.label}: {seen}: {wrong}")
    return problems


def test_every_field_of_the_update_commands_and_their_structs_has_changes():
    """The generated changes reach every field (nested too), so none is skipped."""
    for command in UPDATES:
        info = mi.type_info(command)
        current = full_non_default(command, 1)
        paths = {c.path for c in changes(command, current)}
        for f in info.fields:  # type: ignore[attr-defined]
            t = bare(f.type)
            if isinstance(t, mi.StructType):
                assert {(f.encode_name, g.encode_name) for g in t.fields} <= paths
            else:
                assert (f.encode_name,) in paths, (command, f.name)


@pytest.mark.parametrize("face", FACES)
async def test_every_update_path_is_stored_and_read_back(client, new_user, face):
    problems = []
    for command in UPDATES:
        problems += await check_update_paths(Api(client, new_user()), face, command)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- limits

# Strings are made of characters of 1 to 4 bytes in UTF-8 (𝄞: two UTF-16
# units): a limit counts characters, the same in both faces and databases.


@dataclass(frozen=True)
class Limit:
    """One constraint of one field of a command, by the path of its value in the body."""

    command: type[msgspec.Struct]
    path: Path
    rule: str  # max_length, min_length, ge, le, gt, lt, enum, required, not-null
    bound: Any
    type: mi.Type  # the constrained value's type (None left out)

    @property
    def name(self) -> str:
        return dotted(self.path)

    def __str__(self) -> str:
        return f"{self.command.__name__}.{self.name} {self.rule} {self.bound!r}"

    def accepted(self) -> list[Any]:
        """Values at the limit (REST form)."""
        t, n = self.type, self.bound
        if self.rule in ("required", "not-null"):
            return []  # the baseline holds a value
        if self.rule == "enum":
            return [m.value for m in t.cls]  # type: ignore[attr-defined]
        if isinstance(t, mi.StrType):
            return [text(n)]
        if isinstance(t, mi.ListType):
            return [[sample(t.item_type, k) for k in range(n)]]
        if isinstance(t, mi.IntType):
            return [{"ge": n, "le": n, "gt": n + 1, "lt": n - 1}[self.rule]]
        if isinstance(t, mi.FloatType):
            inside = {"ge": n, "le": n, "gt": math.nextafter(n, math.inf)}
            return [inside.get(self.rule, math.nextafter(n, -math.inf))]
        raise AssertionError(f"{self}: no value at the limit")

    def refused(self) -> Any:
        """The value just beyond the limit (REST form; OMIT: the key left out)."""
        t, n = self.type, self.bound
        if self.rule == "required":
            return OMIT
        if self.rule == "not-null":
            return None
        if self.rule == "enum":
            return "nope"
        if isinstance(t, mi.StrType):
            return text(n + 1 if self.rule == "max_length" else n - 1)
        if isinstance(t, mi.ListType):
            k = n + 1 if self.rule == "max_length" else n - 1
            return [sample(t.item_type, j) for j in range(k)]
        if isinstance(t, mi.IntType):
            return {"ge": n - 1, "le": n + 1, "gt": n, "lt": n}[self.rule]
        if isinstance(t, mi.FloatType):
            outside = {"ge": math.nextafter(n, -math.inf), "le": math.nextafter(n, math.inf)}
            return outside.get(self.rule, n)
        raise AssertionError(f"{self}: no value beyond the limit")

    def as_graphql(self, value: Any) -> Any:
        if value is OMIT:
            return OMIT
        if self.rule == "enum" and value == "nope":
            return "NOPE"
        return as_graphql_input(value, self.type)


# Constraint kinds per msgspec type: each has values at and beyond it above.
KNOWN = {
    mi.StrType: {"min_length", "max_length"},
    mi.ListType: {"min_length", "max_length"},
    mi.IntType: {"ge", "le", "gt", "lt"},
    mi.FloatType: {"ge", "le", "gt", "lt"},
}
UNCONSTRAINED = {"pattern": None, "multiple_of": None, "min_length": 0}


def limits(command: type[msgspec.Struct]) -> list[Limit]:
    """Every constraint of a command, nested structs and list items included."""
    out: list[Limit] = []

    def walk(t: mi.Type, path: Path) -> None:
        kind = bare(t)
        if path and not nullable(t):
            out.append(Limit(command, path, "not-null", None, kind))
        if isinstance(kind, mi.StructType):
            for f in kind.fields:
                if f.required:
                    out.append(Limit(command, (*path, f.encode_name), "required", None, kind))
                walk(f.type, (*path, f.encode_name))
            return
        if isinstance(kind, mi.EnumType):
            out.append(Limit(command, path, "enum", None, kind))
            return
        if isinstance(kind, mi.BoolType):
            return
        known = KNOWN.get(type(kind))
        assert known is not None, f"{dotted(path)}: the walk knows no limits of {kind}"
        for rule in ("min_length", "max_length", "ge", "le", "gt", "lt", "pattern", "multiple_of"):
            bound = getattr(kind, rule, None)
            if bound is None or UNCONSTRAINED.get(rule, object()) == bound:
                continue
            assert rule in known, f"{dotted(path)}: no generated case for {rule}={bound!r}"
            out.append(Limit(command, path, rule, bound, kind))
        if isinstance(kind, mi.ListType):
            walk(kind.item_type, (*path, 0))

    walk(mi.type_info(command), ())
    return out


def baseline(command: type[msgspec.Struct], limit: Limit, sid: str | None) -> dict[str, Any]:
    """A valid body that holds the limited value: every field of a create; the
    one top-level field of an update (the others would change more)."""
    body = command_body(command, 3, sid)
    if command in UPDATES:
        body = {limit.path[0]: body[limit.path[0]]}
    return body


def graphql_errors_name(errors: list[dict[str, Any]], limit: Limit) -> str | None:
    """What is wrong with a GraphQL refusal, or None."""
    [error] = errors
    if error["extensions"]["code"] != "BAD_REQUEST":
        return f"{error}"
    # Refused in the resolver (by the domain, as REST): the REST message. Refused
    # by GraphQL's input coercion (no path): the code only, see the test below.
    if "path" in error and not error["message"].startswith(f"{limit.name}: "):
        return f"message does not name {limit.name}: {error['message']}"
    return None


async def check_limits(api: Api, face: str, command: type[msgspec.Struct]) -> list[str]:
    """Every case of every limit of a command: what went wrong."""
    kind, _record = RECORDS[command]
    sid = None if command is r.CreateSession else (await api.new_session())["id"]
    stored = await count(api, kind, sid)
    problems: list[str] = []
    cases = 0
    for limit in limits(command):
        base = baseline(command, limit, sid)
        for value, ok in [(v, True) for v in limit.accepted()] + [(limit.refused(), False)]:
            cases += 1
            body = put_in(base, limit.path, value)
            gql_body = put_in(
                as_graphql_input(base, mi.type_info(command)), limit.path, limit.as_graphql(value)
            )
            target = None
            before = None
            if command in UPDATES:
                sid, target = await fresh(api, command, sid)
                before = await read_rest(api, kind, sid, target)
            answer = await send(api, face, command, body, target, gql_body)
            label = f"{limit} {'at' if ok else 'beyond'}: {str(value)[:60]!r}"
            if ok:
                if not answer.ok:
                    why = answer.errors or answer.response.text  # type: ignore[union-attr]
                    problems.append(f"{label}: refused: {why}")
                    continue
                assert answer.record is not None
                rid = answer.record["id"]
                stored += command in CREATES
                found = await read_rest(api, kind, sid or rid, rid)
                record_path = limit.path
                if get_in(found, record_path) != value:
                    problems.append(f"{label}: stored {get_in(found, record_path)!r:.80}")
                continue
            if answer.ok:
                problems.append(f"{label}: accepted")
                stored += command in CREATES
                continue
            if face == "rest":
                try:
                    assert_field_error(answer.response, limit.name)  # type: ignore[arg-type]
                except AssertionError as exc:
                    problems.append(f"{label}: {exc}")
            elif wrong := graphql_errors_name(answer.errors, limit):  # type: ignore[arg-type]
                problems.append(f"{label}: {wrong}")
            if command in UPDATES:
                assert sid is not None and target is not None
                if await read_rest(api, kind, sid, target) != before:
                    problems.append(f"{label}: refused but the record changed")
            elif await count(api, kind, sid) != stored:
                problems.append(f"{label}: refused but stored")
    assert cases > 0
    return problems


@pytest.mark.parametrize("face", FACES)
async def test_every_limit_holds_at_the_limit_and_refuses_beyond(client, new_user, face):
    problems = []
    for command in COMMANDS:
        problems += await check_limits(Api(client, new_user()), face, command)
    assert not problems, f"{len(problems)} cases failed:\n" + "\n".join(problems)


def _coerced_refusals() -> Iterator[Limit]:
    for command in COMMANDS:
        for limit in limits(command):
            if limit.rule in ("enum", "required") or (
                isinstance(limit.type, mi.IntType)
                and not -(2**31) <= limit.refused() < 2**31  # GraphQL's Int is 32-bit
            ):
                yield limit


async def test_graphql_coercion_refusals_name_the_field(api, backend):
    """An invalid enum value, a missing required field or an Int beyond 32 bits
    never reaches the domain: GraphQL refuses it. Its message should still say
    which field, as REST's does."""
    if backend != "sqlite":
        pytest.skip("about messages, not storage: SQLite is enough")
    sid = (await api.new_session())["id"]
    problems = []
    for limit in _coerced_refusals():
        command = limit.command
        target = None
        if command in UPDATES:
            sid, target = await fresh(api, command, sid)
        base = baseline(command, limit, sid)
        value = limit.refused()
        gql_body = put_in(
            as_graphql_input(base, mi.type_info(command)), limit.path, limit.as_graphql(value)
        )
        answer = await send(api, "graphql", command, {}, target, gql_body)
        assert not answer.ok and answer.errors, limit
        [error] = answer.errors
        assert error["extensions"]["code"] == "BAD_REQUEST"
        words = [p for p in limit.path if isinstance(p, str)]
        if not all(w in error["message"] for w in words):
            problems.append(f"{limit}: {error['message']}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the walk itself

# The numbers contract.md states, by command and field (the structs may say
# more, e.g. a minimum the contract leaves implicit, never something else).
CONTRACT: dict[tuple[type[msgspec.Struct], str], dict[str, Any]] = {
    (r.CreateSession, "jobContext.title"): {"min_length": 1, "max_length": 200},
    (r.CreateSession, "jobContext.company"): {"min_length": 1, "max_length": 200},
    (r.CreateSession, "jobContext.description"): {"max_length": 10_000},
    (r.CreateSession, "jobContext.requirements"): {"max_length": 100},
    (r.CreateSession, "jobContext.interviewType"): {
        "enum": {"technical", "behavioral", "situational", "cultural"}
    },
    (r.CreateSession, "jobContext.seniority"): {"enum": {"junior", "mid", "senior"}},
    (r.CreateSession, "settings.confidenceThreshold"): {"ge": 0, "le": 1},
    (r.UpdateSession, "status"): {"enum": {"active", "paused", "completed"}},
    (r.CreateInteraction, "sessionId"): {"required": None},
    (r.CreateInteraction, "question"): {"required": None, "min_length": 1, "max_length": 5_000},
    (r.CreateInteraction, "questionClassification.type"): {
        "required": None,
        "enum": {"technical", "behavioral", "situational", "cultural"},
    },
    (r.CreateInteraction, "questionClassification.difficulty"): {
        "enum": {"junior", "mid", "senior"}
    },
    (r.CreateInteraction, "generatedResponses"): {"max_length": 10},
    (r.CreateInteraction, "generatedResponses[0].id"): {"required": None},
    (r.CreateInteraction, "generatedResponses[0].content"): {
        "required": None,
        "max_length": 20_000,
    },
    (r.CreateInteraction, "generatedResponses[0].structure"): {
        "required": None,
        "enum": {"STAR", "direct", "technical"},
    },
    (r.CreateInteraction, "generatedResponses[0].estimatedDuration"): {"ge": 0},
    (r.CreateInteraction, "generatedResponses[0].confidence"): {"ge": 0, "le": 1},
    (r.UpdateInteraction, "selectedResponse"): {"max_length": 20_000},
    (r.UpdateInteraction, "userFeedback"): {"ge": 1, "le": 5},
    (r.RecordMetrics, "sessionId"): {"required": None},
    (r.RecordMetrics, "transcriptionLatencyMs"): {"ge": 0, "le": 3_600_000},
    (r.RecordMetrics, "responseGenerationMs"): {"ge": 0, "le": 3_600_000},
    (r.RecordMetrics, "totalLatencyMs"): {"ge": 0, "le": 3_600_000},
    (r.RecordMetrics, "transcriptionAccuracy"): {"ge": 0, "le": 1},
    (r.RecordMetrics, "userSatisfaction"): {"ge": 1, "le": 5},
}


def declared(command: type[msgspec.Struct]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for limit in limits(command):
        bound = limit.bound
        if limit.rule == "enum":
            bound = {m.value for m in limit.type.cls}  # type: ignore[attr-defined]
        out.setdefault(limit.name, {})[limit.rule] = bound
    return out


def test_the_structs_declare_the_documented_limits():
    for (command, name), documented in CONTRACT.items():
        found = declared(command).get(name, {})
        for rule, bound in documented.items():
            assert rule in found and found[rule] == bound, (command.__name__, name, rule, found)


def test_an_update_validates_as_the_create():
    """PUT /interview-sessions/:id: jobContext and settings "validated as on create"."""
    created = declared(r.CreateSession)
    created["jobContext"].pop("required")  # (an update gives the fields it changes)
    updated = declared(r.UpdateSession)
    assert {k: v for k, v in updated.items() if k != "status"} == created


def test_the_walk_reaches_every_struct_and_constraint():
    """Every value object is reached, and every command has constraints to test."""
    reached = set()

    def visit(t: mi.Type) -> None:
        t = bare(t)
        if isinstance(t, mi.ListType):
            visit(t.item_type)
        if isinstance(t, mi.StructType):
            reached.add(t.cls)
            for f in t.fields:
                visit(f.type)

    for command in COMMANDS:
        visit(mi.type_info(command))
        assert limits(command), command
    assert set(NESTED) | set(COMMANDS) <= reached
    assert {limit.rule for command in COMMANDS for limit in limits(command)} >= {
        "max_length",
        "min_length",
        "ge",
        "le",
        "enum",
        "required",
        "not-null",
    }


class _Patterned(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(pattern="^[a-z]+$")]


class _Stepped(msgspec.Struct):
    minutes: Annotated[int, msgspec.Meta(multiple_of=5)]


def test_a_constraint_the_walk_does_not_know_fails():
    """Say a pattern is added to a field: the walk refuses to pass over it."""
    with pytest.raises(AssertionError, match="pattern"):
        limits(_Patterned)
    with pytest.raises(AssertionError, match="multiple_of"):
        limits(_Stepped)
