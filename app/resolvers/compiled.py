"""A compiled fast path for GraphQL queries (in the spirit of graphql-jit).

A query document is parsed and validated once, with exactly the rules the
Strawberry schema applies, then compiled into a plan: for each response key,
how to get the value (an attribute of the record, or the field's own resolver)
and how to complete it (scalar serialisers, enum names, nested plans). The
plan calls the same resolvers with the same per-request context, so the same
service, rules and DataLoaders answer; it only skips graphql-core's generic,
per-field executor and builds the response dicts directly.

Anything the plan does not cover falls back to the standard executor, which
then answers the request exactly as it always would: mutations, subscriptions,
introspection, documents with ``@skip``/``@include`` on variables, invalid
documents or variables, and *every* error (a domain error, a null in a
non-null field, an unexpected exception). Queries have no side effects, so a
request that fails half-way through the plan is simply executed again.
"""

from __future__ import annotations

import asyncio
import enum
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import strawberry
from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    parse,
    specified_rules,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.schema.schema import validate_document

from app.domain.records import Principal
from app.domain.service import Service
from app.resolvers.context import Context, build_context
from app.schema.guard import MAX_QUERY_CHARS, document_problem
from app.schema.types import LOADER

Completer = Callable[[Any, "Run"], Any]


class Fallback(Exception):
    """Let the standard executor answer this request."""


class NotCompilable(Exception):
    pass


class _Info:
    """What resolvers read from ``info``: only the context."""

    __slots__ = ("context",)

    def __init__(self, context: Context) -> None:
        self.context = context


class Run:
    """One execution: the resolvers' info, field resolvers still running, and
    batched fields waiting for their DataLoader."""

    __slots__ = ("info", "loads", "pending")

    def __init__(self, info: _Info) -> None:
        self.info = info
        self.pending: list[tuple[dict[str, Any], str, asyncio.Future[Any], Completer]] = []
        self.loads: dict[tuple[str, Completer], list[tuple[dict[str, Any], str, Any]]] = {}

    def load(
        self, loader: str, key: Any, out: dict[str, Any], field: str, complete: Completer
    ) -> None:
        self.loads.setdefault((loader, complete), []).append((out, field, key))


class GraphQLRequest(msgspec.Struct):
    query: str
    variables: dict[str, Any] | None = None
    operationName: str | None = None
    extensions: Any = None


_decode_request = msgspec.json.Decoder(GraphQLRequest).decode


# ---------------------------------------------------------------- leaf serialisers
#
# The response is encoded by msgspec, which writes str, bool, int, float, UUID
# and UTC datetimes exactly as the standard path's serialisers do (datetimes as
# RFC 3339 with "Z"). Leaves of those kinds are stored as they are; only values
# that need converting (enum members to their names, an int in a Float field)
# go through a serialiser.

IDENTITY = "identity"


def _passes_through(t: GraphQLScalarType) -> Callable[[Any], bool] | None:
    """A test for values msgspec encodes exactly as ``t.serialize`` would."""
    if t.name == "String":
        return lambda v: type(v) is str
    if t.name == "Boolean":
        return lambda v: type(v) is bool
    if t.name == "Int":
        return lambda v: type(v) is int and -(2**31) <= v < 2**31
    if t.name == "Float":
        return lambda v: type(v) is float and v == v and v not in (_INF, -_INF)
    if t.name == "ID":
        return lambda v: type(v) is str or isinstance(v, uuid.UUID)
    if t.name == "DateTime":
        return lambda v: isinstance(v, datetime) and v.tzinfo is UTC
    return None


_INF = float("inf")

# The same tests as source, inlined into generated builders (``v`` is the value).
_LEAF_TESTS = {
    "String": "type(v) is str",
    "Boolean": "type(v) is bool",
    "Int": "type(v) is int and -2147483648 <= v <= 2147483647",
    "Float": "type(v) is float and v - v == 0.0",
    "ID": "type(v) is str or isinstance(v, UUID)",
    "DateTime": "type(v) is datetime and v.tzinfo is UTC",
}


def _unwrap(t: Any) -> Any:
    return t.of_type if isinstance(t, GraphQLNonNull) else t


def _names_are_member_names(t: GraphQLEnumType) -> bool:
    """True when Strawberry serialises each member of the Python enum as its name
    (it looks the GraphQL value up by the member's value)."""
    members = getattr(t, "wrapped_cls", None)
    if members is None or len(t.values) != len(members):
        return False
    return all(m.name in t.values and t.values[m.name].value == m.value for m in members)


def _scalar(t: GraphQLScalarType) -> Completer:
    serialize = t.serialize
    name = t.name
    if name == "String":
        return lambda v, _p: v if type(v) is str else serialize(v)
    if name == "Boolean":
        return lambda v, _p: v if type(v) is bool else serialize(v)
    if name == "Int":
        return lambda v, _p: v if type(v) is int and -(2**31) <= v < 2**31 else serialize(v)
    if name == "ID":
        return lambda v, _p: (
            v if type(v) is str else str(v) if isinstance(v, uuid.UUID) else serialize(v)
        )
    return lambda v, _p: serialize(v)


def _enum(t: GraphQLEnumType) -> Completer:
    serialize = t.serialize
    return lambda v, _p: v.name if isinstance(v, enum.Enum) else serialize(v)


class Plan:
    """A compiled query operation."""

    def __init__(
        self,
        schema: strawberry.Schema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
    ) -> None:
        self.schema = schema
        self.gql: GraphQLSchema = schema._schema
        self.operation = operation
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        root = self.gql.query_type
        assert root is not None
        self.roots = self._root_fields(root)

    # ---------------------------------------------------------------- compiling

    def _collect(
        self,
        selection_set: SelectionSetNode,
        type_name: str,
        out: dict[str, list[FieldNode]],
        seen: frozenset[str] = frozenset(),
    ) -> dict[str, list[FieldNode]]:
        for sel in selection_set.selections:
            if not self._included(sel):
                continue
            if isinstance(sel, FieldNode):
                key = sel.alias.value if sel.alias else sel.name.value
                out.setdefault(key, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                if cond is None or cond.name.value == type_name:
                    self._collect(sel.selection_set, type_name, out, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                frag = self.fragments.get(name)
                if frag is None or name in seen:
                    raise NotCompilable(name)
                if frag.type_condition.name.value == type_name:
                    self._collect(frag.selection_set, type_name, out, seen | {name})
        return out

    @staticmethod
    def _included(node: Any) -> bool:
        for d in node.directives or ():
            name = d.name.value
            if name not in ("skip", "include"):
                raise NotCompilable(f"directive @{name}")
            [arg] = d.arguments
            if not isinstance(arg.value, BooleanValueNode):
                raise NotCompilable("@skip/@include on a variable")
            if arg.value.value is (name == "skip"):
                return False
        return True

    def _root_fields(self, root: GraphQLObjectType) -> list[tuple[str, FieldNode, Any, Completer]]:
        fields = self._collect(self.operation.selection_set, root.name, {})
        roots: list[tuple[str, FieldNode, Any, Completer]] = []
        for key, nodes in fields.items():
            node = nodes[0]
            name = node.name.value
            if name == "__typename":
                roots.append((key, node, None, _constant(root.name)))
                continue
            if name.startswith("__") or len(nodes) > 1:
                raise NotCompilable(name)
            definition = root.fields[name]
            field = self.schema.get_field_for_type(name, root.name)
            if field is None or field.base_resolver is None:
                raise NotCompilable(name)
            resolver = field.base_resolver.wrapped_func
            names = self.schema.config.name_converter
            arg_names = {names.get_graphql_name(a): a.python_name for a in field.arguments}
            fixed = None
            if not any(_uses_variables(a.value) for a in node.arguments or ()):
                # Literal arguments are coerced once, here, not on every request.
                args = get_argument_values(definition, node, None)
                fixed = {arg_names[k]: v for k, v in args.items()}
            completer = self._completer(definition.type, nodes)
            roots.append((key, node, (definition, resolver, arg_names, fixed), completer))
        return roots

    def _completer(self, t: GraphQLOutputType, nodes: Sequence[FieldNode]) -> Completer:
        if isinstance(t, GraphQLNonNull):
            inner = self._completer(t.of_type, nodes)

            def non_null(v: Any, p: Run) -> Any:
                if v is None:
                    raise Fallback("null in a non-null field")
                return inner(v, p)

            return non_null
        if isinstance(t, GraphQLList):
            of = t.of_type.of_type if isinstance(t.of_type, GraphQLNonNull) else t.of_type
            item = self._completer(t.of_type, nodes)
            test = _passes_through(of) if isinstance(of, GraphQLScalarType) else None
            if test is not None:
                # A list of plain scalars is encoded as it is when every item is.
                return lambda v, p: (
                    None if v is None else v if all(map(test, v)) else [item(x, p) for x in v]
                )
            return lambda v, p: None if v is None else [item(x, p) for x in v]
        if isinstance(t, GraphQLScalarType):
            leaf = _scalar(t)
        elif isinstance(t, GraphQLEnumType):
            leaf = _enum(t)
        elif isinstance(t, GraphQLObjectType):
            build = self._object(t, nodes)
            return lambda v, p: None if v is None else build(v, p)
        else:  # pragma: no cover - the schema has no interfaces or unions
            raise NotCompilable(str(t))
        return lambda v, p: None if v is None else leaf(v, p)

    def _object(self, t: GraphQLObjectType, nodes: Sequence[FieldNode]) -> Completer:
        """Generate the builder of this selection as Python source, once.

        Each response key becomes one entry of a dict display: the attribute
        read, a type test inlined for leaves msgspec writes as is, and the
        general completer for everything else (None included, so nulls in
        non-null fields fall back).
        """
        fields: dict[str, list[FieldNode]] = {}
        for node in nodes:
            if node.selection_set is not None:
                self._collect(node.selection_set, t.name, fields)
        env: dict[str, Any] = {
            "UUID": uuid.UUID,
            "datetime": datetime,
            "UTC": UTC,
            "Enum": enum.Enum,
            "ensure_future": asyncio.ensure_future,
        }
        entries: list[str] = []
        later: list[str] = []
        for n, (key, group) in enumerate(fields.items()):
            name = group[0].name.value
            k = repr(key)
            if name == "__typename":
                entries.append(f"{k}: {t.name!r}")
                continue
            if name.startswith("__") or any(node.arguments for node in group):
                raise NotCompilable(name)
            definition: GraphQLField = t.fields[name]
            field = self.schema.get_field_for_type(name, t.name)
            if field is None:
                raise NotCompilable(name)
            env[f"F{n}"] = self._completer(definition.type, group)
            loader = field.metadata.get(LOADER) if field.metadata else None
            if loader is not None:
                # A DataLoader field: its keys are gathered and loaded together.
                entries.append(f"{k}: None")
                later.append(f"run.load({loader!r}, obj.id, out, {k}, F{n})")
                continue
            if field.base_resolver is not None:
                if field.arguments:
                    raise NotCompilable(name)
                env[f"R{n}"] = field.base_resolver.wrapped_func
                entries.append(f"{k}: None")  # keeps the key's place; filled in later
                later.append(
                    f"run.pending.append((out, {k}, ensure_future(R{n}(obj, run.info)), F{n}))"
                )
                continue
            read = f"(v := obj.{field.python_name})"
            named: Any = definition.type
            if isinstance(named, GraphQLNonNull):
                named = named.of_type
            if isinstance(named, GraphQLScalarType) and named.name in _LEAF_TESTS:
                test = _LEAF_TESTS[named.name]
                entries.append(f"{k}: (v if {read} is not None and ({test}) else F{n}(v, run))")
            elif isinstance(named, GraphQLEnumType) and _names_are_member_names(named):
                env[f"E{n}"] = named.wrapped_cls  # type: ignore[attr-defined]
                entries.append(f"{k}: (v._name_ if type({read}) is E{n} else F{n}(v, run))")
            elif (
                isinstance(named, GraphQLList)
                and isinstance(item := _unwrap(named.of_type), GraphQLScalarType)
                and item.name in _LEAF_TESTS
            ):
                # A list of plain scalars is written as it is when every item is.
                test = re.sub(r"\bv\b", "x", _LEAF_TESTS[item.name])
                entries.append(
                    f"{k}: (v if type({read}) is list and all({test} for x in v) else F{n}(v, run))"
                )
            elif isinstance(named, GraphQLObjectType):
                env[f"B{n}"] = self._object(named, group)
                entries.append(f"{k}: (B{n}(v, run) if {read} is not None else F{n}(v, run))")
            else:
                entries.append(f"{k}: F{n}(obj.{field.python_name}, run)")
        body = ",\n        ".join(entries)
        tail = "".join(f"\n    {line}" for line in later)
        source = (
            f"def build(obj, run):\n    out = {{\n        {body}\n    }}{tail}\n    return out\n"
        )
        exec(compile(source, f"<graphql plan for {t.name}>", "exec"), env)  # noqa: S102
        build: Completer = env["build"]
        return build

    # ---------------------------------------------------------------- executing

    async def execute(self, context: Context, variables: Any) -> dict[str, Any]:
        run = Run(_Info(context))
        try:
            return await self._execute(run, variables)
        except BaseException:
            # Nothing of a failed run may linger: the standard path starts afresh.
            for _o, _k, future, _c in run.pending:
                future.cancel()
            raise

    async def _execute(self, run: Run, variables: Any) -> dict[str, Any]:
        calls: list[Any] = []
        for _key, node, how, _complete in self.roots:
            if how is None:
                continue
            definition, resolver, arg_names, fixed = how
            if fixed is not None:
                kwargs = fixed
            else:
                args = get_argument_values(definition, node, variables)
                kwargs = {arg_names[k]: v for k, v in args.items()}
            calls.append(resolver(None, run.info, **kwargs))
        # Root fields of a query run concurrently, as graphql-core runs them.
        if len(calls) == 1:
            results = [await calls[0]]
        else:
            results = await asyncio.gather(*calls)
        values = iter(results)
        data: dict[str, Any] = {}
        for key, _node, how, complete in self.roots:
            data[key] = complete(None if how is None else next(values), run)
        context = run.info.context
        while run.pending or run.loads:
            batch, run.pending = run.pending, []
            loads, run.loads = run.loads, {}
            # Everything of a round starts before anything is awaited, so each
            # DataLoader answers its keys with one statement.
            waits = [f for _o, _k, f, _c in batch]
            waits += [
                getattr(context, loader).load_many([e[2] for e in entries])
                for (loader, _c), entries in loads.items()
            ]
            results = await asyncio.gather(*waits)
            for (out, key, _f, complete), value in zip(batch, results, strict=False):
                out[key] = complete(value, run)
            for ((_loader, complete), entries), values in zip(
                loads.items(), results[len(batch) :], strict=True
            ):
                for (out, key, _id), value in zip(entries, values, strict=True):
                    out[key] = complete(value, run)
        return data


def _uses_variables(value: Any) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_uses_variables(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_uses_variables(f.value) for f in value.fields)
    return False


def _same(v: Any, _r: Run) -> Any:
    return v


def _constant(value: Any) -> Completer:
    return lambda _v, _r: value


class CompiledQueries:
    """Plans per document, and the request entry point the gateway calls."""

    def __init__(
        self,
        schema: strawberry.Schema,
        service: Service,
        *,
        max_tokens: int,
        extra_rules: Sequence[Any],
        cache_size: int = 256,
    ) -> None:
        self.schema = schema
        self.service = service
        self.max_tokens = max_tokens
        self.rules = (*specified_rules, *extra_rules)
        self.cache_size = cache_size
        self.plans: OrderedDict[tuple[str, str | None], Plan | None] = OrderedDict()
        self.answered = 0  # requests the plans answered (tests and operators read these)
        self.passed_on = 0  # requests left to the standard executor

    def plan(self, query: str, operation_name: str | None) -> Plan | None:
        if len(query) > MAX_QUERY_CHARS:
            return None  # refused by the standard path; never cached here
        key = (query, operation_name)
        plans = self.plans
        if key in plans:
            plans.move_to_end(key)
            return plans[key]
        plan = self._compile(query, operation_name)
        plans[key] = plan
        if len(plans) > self.cache_size:
            plans.popitem(last=False)
        return plan

    def _compile(self, query: str, operation_name: str | None) -> Plan | None:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        if document_problem(document) is not None:
            return None
        if validate_document(self.schema._schema, document, self.rules):
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            if len(operations) != 1:
                return None
            operation = operations[0]
        else:
            named = [o for o in operations if o.name and o.name.value == operation_name]
            if len(named) != 1:
                return None
            operation = named[0]
        if operation.operation is not OperationType.QUERY:
            return None
        try:
            return Plan(self.schema, document, operation)
        except NotCompilable:
            return None

    async def answer(
        self, body: bytes, principal: Principal | None, request_id: str
    ) -> bytes | None:
        """The response body, or None when the standard executor must answer."""
        result = await self._answer(body, principal, request_id)
        if result is None:
            self.passed_on += 1
        else:
            self.answered += 1
        return result

    async def _answer(
        self, body: bytes, principal: Principal | None, request_id: str
    ) -> bytes | None:
        if principal is None:
            return None
        try:
            request = _decode_request(body)
        except (msgspec.DecodeError, RecursionError):
            return None
        plan = self.plan(request.query, request.operationName)
        if plan is None:
            return None
        variables = get_variable_values(
            self.schema._schema, plan.operation.variable_definitions or (), request.variables or {}
        )
        if isinstance(variables, list):  # coercion errors: the standard path reports them
            return None
        context = build_context(self.service, principal, request_id)
        try:
            data = await plan.execute(context, variables)
        except Exception:
            return None
        return msgspec.json.encode({"data": data})
