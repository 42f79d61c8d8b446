"""Compiled query plans: an execution strategy inside the GraphQL endpoint.

A valid query operation (see :mod:`app.resolvers.documents`) can be compiled
into a plan: for each response key, how to get the value (an attribute of the
record, the field's own resolver, or the field's DataLoader) and how to
complete it (leaf tests inlined, enum names, nested builders generated as
Python source once). The plan calls the same resolvers with the same
per-request context, so the same service, rules and DataLoaders answer; it
only skips graphql-core's generic per-field executor.

Plans **fail closed**. A plan is built only from what it models, and the
compiler refuses (``NotCompilable``: the standard executor answers) anything
else, at compile time: abstract types, fragments whose type condition is not
the object's own type, fields with permission classes or extensions, scalars
whose serializer is not one of the known functions (compared by identity, not
name), enums whose GraphQL names are not the members' names, resolvers that
are not ``async def (root, info, **arguments)``, list fields whose resolver is
not annotated to return a list, directives other than literal
``@skip``/``@include``. At run time, a value the plan cannot write exactly as
the standard executor would (a null in a non-null field, a list field holding
something that is not a list) raises :class:`Fallback`: the request is then
answered by the standard executor. The generated source of every builder is
kept on the plan (``Plan.sources``; ``interview-api plan`` prints it).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    located_error,
)
from graphql.execution.values import VariableValues, get_argument_values
from graphql.pyutils import Path
from msgspec import Raw
from strawberry.types.field import StrawberryField

from app.internals import graphql_schema
from app.queries.projection import Children, NotProjectable, Projection, child_kinds, kind_of
from app.queries.projection import check as check_projection
from app.queries.reads import Reads
from app.resolvers.arguments import argument_converter
from app.resolvers.context import Context
from app.resolvers.plan_rules import (
    WRITTEN_LEAVES,
    Completion,
    Fallback,
    MutationFailed,
    NotCompilable,
    _arguments,
    _check_enum,
    _check_field,
    _constant,
    _has_input_object,
    _is_list,
    _leaf_test,
    _resolver_of,
    _returns_list,
    _unwrap,
    _uses_variables,
)
from app.resolvers.schema import Schema
from app.schema.types import LOADER, RECORD, WRITTEN

log = logging.getLogger("app.graphql.plans")

Completer = Callable[[Any, "Run"], Any]


class _Info:
    """What resolvers read from ``info``: only the context."""

    __slots__ = ("context",)

    def __init__(self, context: Context) -> None:
        self.context = context


class Run:
    """One execution: the resolvers' info, field resolvers still running,
    batched fields waiting for their DataLoader, and batched fields waiting for
    the storage to write them (``Reads.written``)."""

    __slots__ = ("info", "pending", "writes")

    def __init__(self, info: _Info) -> None:
        self.info = info
        self.pending: list[tuple[dict[str, Any], str, asyncio.Future[Any], Completer]] = []
        self.writes: dict[Children, list[tuple[dict[str, Any], str, Any]]] = {}

    def written(self, part: Children, key: Any, out: dict[str, Any], field: str) -> None:
        self.writes.setdefault(part, []).append((out, field, key))


def _not_list(v: Any) -> Any:
    raise Fallback("a list field holds something else")


def _embed(v: Any, _run: Run) -> Any:
    """A root answer the storage wrote as JSON; None: the standard executor answers."""
    if v is None:
        raise Fallback("the storage wrote nothing (the resolver answers with its error)")
    return Raw(v)


# ---------------------------------------------------------------- the plan


class Plan:
    """A compiled query operation, or a mutation of one root field."""

    def __init__(
        self,
        schema: Schema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.sources: dict[str, str] = {}
        if operation.directives:
            raise NotCompilable("directives on the operation")
        self.mutation = operation.operation is OperationType.MUTATION
        root = (
            graphql_schema(schema).mutation_type
            if self.mutation
            else graphql_schema(schema).query_type
        )
        assert root is not None
        self.root_type = root.name
        self.roots = self._root_fields(root)
        if self.mutation and (len(self.roots) != 1 or self.roots[0][2] is None):
            # Several mutation fields run one after another, and an error in
            # one stops the rest: left to the standard executor.
            raise NotCompilable("a mutation plan has exactly one mutation field")

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
                if cond is not None and cond.name.value != type_name:
                    raise NotCompilable(f"a fragment on {cond.name.value} inside {type_name}")
                self._collect(sel.selection_set, type_name, out, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                frag = self.fragments.get(name)
                if frag is None or name in seen:
                    raise NotCompilable(name)
                if frag.directives:
                    raise NotCompilable(f"directives on fragment {name}")
                if frag.type_condition.name.value != type_name:
                    raise NotCompilable(f"fragment {name} on another type than {type_name}")
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

    def _field(self, name: str, type_name: str) -> StrawberryField:
        field = self.schema.get_field_for_type(name, type_name)
        if field is None:
            raise NotCompilable(f"{type_name}.{name}")
        _check_field(field, f"{type_name}.{name}")
        return field

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
            field = self._field(name, root.name)
            if field.base_resolver is None:
                raise NotCompilable(name)
            resolver = _resolver_of(field, name, arguments=True)
            if _is_list(definition.type) and not _returns_list(field):
                raise NotCompilable(f"{name}: not annotated to return a list")
            # Arguments reach the resolver exactly as Strawberry converts them
            # (input objects become their input classes, absent ones UNSET).
            convert = self._converter(field)
            fixed = literal = None
            if not any(_uses_variables(a.value) for a in node.arguments or ()):
                # Literal arguments are coerced once, here, not on every request;
                # input objects are converted anew each time (the resolver may
                # keep what it is given), scalars only once.
                literal = get_argument_values(definition, node, None)
                if any(
                    _has_input_object(definition.args[a.name.value].type)
                    for a in node.arguments or ()
                ):
                    pass  # ``literal``: converted on each request
                else:
                    fixed, literal = convert(literal), None
            written = self._written_root(field, definition.type, nodes)
            if written is not None:
                # The storage writes the whole answer of this field.
                resolver, completer = written
            else:
                completer = self._completer(definition.type, nodes)
            roots.append((key, node, (definition, resolver, convert, fixed, literal), completer))
        return roots

    def _converter(self, field: StrawberryField) -> Callable[[dict[str, Any]], dict[str, Any]]:
        registry = self.schema.schema_converter.scalar_registry
        return argument_converter(field.arguments, registry, self.schema.config)

    def _completer(self, t: GraphQLOutputType, nodes: Sequence[FieldNode]) -> Completer:
        if isinstance(t, GraphQLNonNull):
            inner = self._completer(t.of_type, nodes)

            def non_null(v: Any, p: Run) -> Any:
                if v is None:
                    raise Fallback("null in a non-null field")
                return inner(v, p)

            return non_null
        if isinstance(t, GraphQLList):
            item = self._completer(t.of_type, nodes)
            return lambda v, p: (
                None if v is None else [item(x, p) for x in v] if type(v) is list else _not_list(v)
            )
        if isinstance(t, GraphQLScalarType):
            _leaf_test(t)
            serialize = t.serialize
            return lambda v, _p: None if v is None else serialize(v)
        if isinstance(t, GraphQLEnumType):
            members = _check_enum(t)
            return lambda v, _p: (
                None if v is None else v._name_ if type(v) is members else t.serialize(v)
            )
        if isinstance(t, GraphQLObjectType):
            build = self._object(t, nodes)
            return lambda v, p: None if v is None else build(v, p)
        raise NotCompilable(f"abstract type {t}")

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
            "date": date,
            "UTC": UTC,
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
            field = self._field(name, t.name)
            env[f"F{n}"] = self._completer(definition.type, group)
            if _is_list(definition.type) and not _returns_list(field):
                raise NotCompilable(f"{t.name}.{name}: not annotated to return a list")
            loader = field.metadata.get(LOADER) if field.metadata else None
            if loader is not None:
                _resolver_of(field, name, arguments=False)  # the same checks as any resolver
                record = field.metadata.get(RECORD)
                projection = self._projection(definition.type, group, record)
                if projection is None or record is None:
                    raise NotCompilable(f"{t.name}.{name}: a list the storage cannot write")
                # Only stored fields of the records: the storage writes the
                # JSON of every parent's list at once.
                env[f"P{n}"] = Children(loader, record, projection)
                entries.append(f"{k}: None")
                later.append(f"run.written(P{n}, obj.id, out, {k})")
                continue
            if field.base_resolver is not None:
                env[f"R{n}"] = _resolver_of(field, name, arguments=False)
                entries.append(f"{k}: None")  # keeps the key's place; filled in later
                later.append(
                    f"run.pending.append((out, {k}, ensure_future(R{n}(obj, run.info)), F{n}))"
                )
                continue
            read = f"(v := obj.{field.python_name})"
            named: Any = _unwrap(definition.type)
            if isinstance(named, GraphQLScalarType):
                test = _leaf_test(named)
                entries.append(f"{k}: (v if {read} is not None and ({test}) else F{n}(v, run))")
            elif isinstance(named, GraphQLEnumType):
                env[f"E{n}"] = _check_enum(named)
                entries.append(f"{k}: (v._name_ if type({read}) is E{n} else F{n}(v, run))")
            elif isinstance(named, GraphQLList) and isinstance(
                item := _unwrap(named.of_type), GraphQLScalarType
            ):
                # A list of plain scalars is written as it is when every item is.
                test = re.sub(r"\bv\b", "x", _leaf_test(item))
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
        label = f"{t.name}#{len(self.sources)}"
        self.sources[label] = source
        exec(compile(source, f"<graphql plan for {label}>", "exec"), env)  # noqa: S102
        build: Completer = env["build"]
        return build

    def _written_root(
        self, field: StrawberryField, t: GraphQLOutputType, nodes: Sequence[FieldNode]
    ) -> tuple[Callable[..., Any], Completer] | None:
        """A root field with lists whose answer the storage can write whole
        (metadata ``WRITTEN``: the batched read, ``Reads``; ``RECORD``: the
        record it shows): the call, and a completer embedding the JSON (None
        from the read: the standard executor answers, with its error).
        Without lists the plan's builders write the rows (no JSON to gain)."""
        metadata: Mapping[str, Any] = field.metadata or {}
        method, record = metadata.get(WRITTEN), metadata.get(RECORD)
        if method is None or record is None or not hasattr(Reads, method):
            return None
        item = _unwrap(t)
        if isinstance(item, GraphQLList):
            item = _unwrap(item.of_type)
        projection = self._checked(item, nodes, record, children=True)
        if projection is None or not child_kinds(projection):
            return None

        self.sources[f"{field.python_name} (written whole by the storage)"] = (
            f"context.reads.{method}(projection, **arguments)\nprojection = {projection!r}\n"
        )

        async def call(_root: Any, info: _Info, **kwargs: Any) -> Any:
            return await getattr(info.context.reads, method)(projection, **kwargs)

        return call, _embed

    def _projection(
        self, t: GraphQLOutputType, nodes: Sequence[FieldNode], record: Any
    ) -> Projection | None:
        """The projection of a list of ``record`` whose selection only copies
        stored fields, each written exactly as the standard executor writes it;
        None when anything selected is more (the DataLoader answers then)."""
        named = _unwrap(t)
        if record is None or not isinstance(named, GraphQLList):
            return None
        return self._checked(_unwrap(named.of_type), nodes, record, children=False)

    def _checked(
        self, item: Any, nodes: Sequence[FieldNode], record: Any, *, children: bool
    ) -> Projection | None:
        """The selection of an object type as a projection of ``record``, or
        None when the storage cannot write it exactly."""
        if not isinstance(item, GraphQLObjectType):
            return None
        try:
            projection = self._fields_of(item, nodes, record, children=children)
            check_projection(record, projection)
        except (NotProjectable, NotCompilable) as reason:
            log.debug("not written by the storage: %s", reason)
            return None
        return projection

    def _fields_of(
        self,
        t: GraphQLObjectType,
        nodes: Sequence[FieldNode],
        record: Any,
        *,
        children: bool = False,
    ) -> Projection:
        fields: dict[str, list[FieldNode]] = {}
        for node in nodes:
            if node.selection_set is not None:
                self._collect(node.selection_set, t.name, fields)
        out: list[tuple[str, str, Projection | Children | None]] = []
        for key, group in fields.items():
            name = group[0].name.value
            if name.startswith("__") or any(node.arguments for node in group):
                raise NotProjectable(name)
            definition = t.fields[name]
            field = self._field(name, t.name)
            metadata: Mapping[str, Any] = field.metadata or {}
            loader, child = metadata.get(LOADER), metadata.get(RECORD)
            if children and loader is not None and child is not None:
                # A batched list of the parent (a session's interactions or metrics).
                listed = _unwrap(definition.type)
                item = _unwrap(listed.of_type) if isinstance(listed, GraphQLList) else None
                if not isinstance(item, GraphQLObjectType):
                    raise NotProjectable(f"{t.name}.{name}")
                _resolver_of(field, name, arguments=False)
                part = Children(loader, child, self._fields_of(item, group, child))
                out.append((key, loader, part))
                continue
            if field.base_resolver is not None:
                raise NotProjectable(f"{t.name}.{name} has a resolver")
            kind = kind_of(record, field.python_name)
            gtype: Any = definition.type
            if isinstance(gtype, GraphQLNonNull) and kind.optional:
                raise NotProjectable(f"{t.name}.{name}: non-null over an optional field")
            gtype = _unwrap(gtype)
            if isinstance(gtype, GraphQLList):
                if kind.shape != "list":
                    raise NotProjectable(f"{t.name}.{name}")
                gtype, kind = _unwrap(gtype.of_type), kind.type
            sub: Projection | None = None
            if isinstance(gtype, GraphQLObjectType):
                if kind.shape != "struct":
                    raise NotProjectable(f"{t.name}.{name}")
                sub = self._fields_of(gtype, group, kind.type)
            elif isinstance(gtype, GraphQLEnumType):
                if kind.shape != "leaf" or _check_enum(gtype) is not kind.type:
                    raise NotProjectable(f"{t.name}.{name}")
            elif isinstance(gtype, GraphQLScalarType):
                _leaf_test(gtype)
                if kind.shape != "leaf" or kind.type not in WRITTEN_LEAVES.get(gtype.serialize, ()):
                    raise NotProjectable(f"{t.name}.{name}: {gtype.name} over {kind.type}")
            else:
                raise NotProjectable(f"{t.name}.{name}")
            out.append((key, field.python_name, sub))
        return Projection(tuple(out))

    # ---------------------------------------------------------------- executing

    async def mutate(self, context: Context, variables: VariableValues) -> dict[str, Any]:
        """The ``data`` of a mutation's answer. The mutation runs exactly once:
        when its resolver raises, :class:`MutationFailed` carries the field's
        error; when the plan cannot write what it returned, :class:`Completion`
        hands the value to the standard executor. Anything that fails before
        the resolver is called leaves the request to the standard executor."""
        [(key, node, how, complete)] = self.roots
        definition, resolver, convert, fixed, literal = how
        kwargs = _arguments(definition, node, variables, convert, fixed, literal)
        run = Run(_Info(context))
        try:
            value = await resolver(None, run.info, **kwargs)
        except Exception as exc:
            error = located_error(exc, [node], Path(None, key, self.root_type).as_list())
            nullable = not isinstance(definition.type, GraphQLNonNull)
            raise MutationFailed(error, {key: None} if nullable else None) from None
        started: list[asyncio.Future[Any]] = []
        try:
            return await self._complete(run, [(key, complete, value)], started)
        except BaseException as exc:
            for future in [*started, *(f for _o, _k, f, _c in run.pending)]:
                future.cancel()
            if isinstance(exc, Exception):
                raise Completion(value) from None
            raise

    async def execute(self, context: Context, variables: VariableValues) -> dict[str, Any]:
        """The ``data`` of the answer. Whatever fails, nothing this run started is
        left running: every resolver task and DataLoader future is cancelled."""
        run = Run(_Info(context))
        started: list[asyncio.Future[Any]] = []
        try:
            return await self._execute(run, variables, started)
        except BaseException:
            for future in started:
                future.cancel()
            for _o, _k, future, _c in run.pending:
                future.cancel()
            raise

    async def _execute(
        self, run: Run, variables: VariableValues, started: list[asyncio.Future[Any]]
    ) -> dict[str, Any]:
        calls: list[Any] = []
        for _key, node, how, _complete in self.roots:
            if how is None:
                continue
            definition, resolver, convert, fixed, literal = how
            kwargs = _arguments(definition, node, variables, convert, fixed, literal)
            calls.append(resolver(None, run.info, **kwargs))
        # Root fields of a query run concurrently, as graphql-core runs them.
        if len(calls) == 1:
            results = [await calls[0]]
        else:
            tasks = [asyncio.ensure_future(c) for c in calls]
            started.extend(tasks)
            results = await asyncio.gather(*tasks)
        values = iter(results)
        completing = [
            (key, complete, None if how is None else next(values))
            for key, _node, how, complete in self.roots
        ]
        return await self._complete(run, completing, started)

    async def _complete(
        self,
        run: Run,
        roots: list[tuple[str, Completer, Any]],
        started: list[asyncio.Future[Any]],
    ) -> dict[str, Any]:
        """The root values completed, then each round of what they left
        pending (field resolvers, DataLoaders, lists the storage writes)."""
        data: dict[str, Any] = {}
        for key, complete, value in roots:
            data[key] = complete(value, run)
        context = run.info.context
        while run.pending or run.writes:
            batch, run.pending = run.pending, []
            writes, run.writes = run.writes, {}
            # Everything of a round starts before anything is awaited.
            waits: list[asyncio.Future[Any]] = [f for _o, _k, f, _c in batch]
            # Lists the storage writes: every part over the same parents in one call.
            parts: dict[tuple[Any, ...], list[Children]] = {}
            for part, entries in writes.items():
                parts.setdefault(tuple(e[2] for e in entries), []).append(part)
            waits += [
                asyncio.ensure_future(context.reads.written(list(ids), tuple(wanted)))
                for ids, wanted in parts.items()
            ]
            started.extend(waits)
            results = await asyncio.gather(*waits)
            for (out, key, _f, complete), value in zip(batch, results, strict=False):
                out[key] = complete(value, run)
            done = len(batch)
            for (_ids, wanted), texts in zip(parts.items(), results[done:], strict=True):
                for n, part in enumerate(wanted):
                    for (out, key, _id), per_parent in zip(writes[part], texts, strict=True):
                        out[key] = Raw(per_parent[n])  # JSON the storage wrote, embedded as is
        return data
