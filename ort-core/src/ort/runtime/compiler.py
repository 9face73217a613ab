"""The compiler: a graph in, a :class:`~ort.runtime.plan.Plan` out. The only plan builder.

:func:`compile` partitions a graph over the session's providers (expanding ops that are ONNX
functions when no provider has a kernel for them), gives every value a slot, inserts a copy
where a value crosses devices (constants are copied once, here), prepares every node's kernel
with its :class:`~ort.ep.NodeInfo` and computes when each value can be released.

Everything that runs goes through it: the session's model, If/Loop/Scan bodies
(:meth:`SessionCompileContext.compile_subgraph`), function bodies
(:meth:`SessionCompileContext.compile_model`), graphs evaluated for constant folding
(:meth:`SessionCompileContext.evaluate`) and the node groups a provider claims as one unit
(:meth:`SessionCompileContext.compile_nodes`, what ``ExecutionProvider.compile`` uses). Kernels
and providers reach it through the :class:`SessionCompileContext` they are handed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from onnx import GraphProto, ModelProto, helper

from ..ep import (
    CompileContext, ExecutionProvider, KernelDef, NodeInfo, Registry, max_output_bytes_of,
)
from ..errors import Fail, InvalidGraph, OrtError
from ..errors import NotImplemented as OrtNotImplemented
from ..ir import Graph, Node, WeightStore, attribute_value, infer_types, subgraph_free_names
from ..ir.gc_pause import paused_gc
from .executor import execute, quiet_fp_begin, quiet_fp_end
from .functions import function_body, function_kernel
from .partition import Assignment, Partition, explain_all_unclaimed
from .partition import partition as assign_nodes
from .plan import DISCARD_SLOT, NONE_SLOT, Plan, Step
from .subgraph import Subgraph

__all__ = ["compile", "SessionCompileContext", "node_attributes"]


class SessionCompileContext(CompileContext):
    """The compiler of one session: its providers, the plugin registry and the session's
    weights. Handed to kernel factories (``NodeInfo.context``) and to providers compiling
    fused groups (``ExecutionProvider.compile``).

    Args:
        providers: the session's providers, in priority order.
        registry: the plugin registry (kernels and declared schemas).
        weights: the session's :class:`~ort.ir.WeightStore`.
        session_config: the session's config entries; ``session.max_output_bytes`` sets
            :attr:`max_output_bytes`, the most bytes one output may take (None: the machine's
            memory, see :mod:`ort.ep.limits`), which kernels apply through
            ``NodeInfo.check_output_size``.
    """

    def __init__(self, providers: Sequence[ExecutionProvider], registry: Registry,
                 weights: WeightStore | None = None,
                 session_config: Mapping[str, str] | None = None,
                 intra_op_threads: int = 0) -> None:
        self.providers = list(providers)
        self.intra_op_threads = max(0, int(intra_op_threads))
        self.registry = registry
        self.weights = weights
        self.max_output_bytes = max_output_bytes_of(session_config or {})

    def graph_of(self, model: ModelProto, functions: Mapping | None = None) -> Graph:
        """The IR of a (type-inferred) model, with the session's weights and schemas."""
        opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version
                  for o in model.opset_import}
        local = {(f.domain, f.name): f for f in model.functions}
        with paused_gc():
            return Graph(model.graph, opsets, functions=dict(functions or {}) | local,
                         weights=self.weights, schemas=self.registry.schemas)

    def compile_subgraph(self, body: GraphProto, parent: Graph) -> Subgraph:
        """Compile a graph attribute (or a graph a kernel built) as a subgraph of ``parent``."""
        outer = subgraph_free_names(body)
        graph = parent.nested(body, outer)
        return Subgraph(compile(graph, self), [vi.name for vi in body.input],
                        [vi.name for vi in body.output], sorted(outer))

    def compile_nodes(self, graph: Graph, node_indices: Sequence[int], inputs: Sequence[str],
                      outputs: Sequence[str], *, provider: ExecutionProvider,
                      constants: Sequence[str] = (), name: str = "fused") -> Subgraph:
        """Compile some of ``graph``'s nodes into a unit ``provider`` runs alone (see
        :meth:`ort.ep.CompileContext.compile_nodes`)."""
        members = [graph.nodes[i] for i in sorted(node_indices)]
        held = {n: graph.initializers[n] for n in constants}
        fed = [n for n in inputs if n not in held]
        body = helper.make_graph(
            [n.proto for n in members], name,
            [helper.make_value_info(n, graph.value_types[n]) if n in graph.value_types
             else helper.make_empty_tensor_value_info(n) for n in fed],
            [helper.make_empty_tensor_value_info(n) for n in outputs])
        unit = graph.nested(body, extra_initializers=held)
        placed = None if provider.device.is_host else {n: provider for n in fed}
        plan = compile(unit, self, placed, providers=[provider], fuse=False)
        return Subgraph(plan, fed, list(outputs))

    def compile_model(self, model: ModelProto, parent: Graph) -> Subgraph:
        """Compile a standalone model (a function body with its own opsets) whose inputs are
        fed in host memory; ``parent`` lends its model-local functions."""
        model = infer_types(model, self.registry.schemas)
        graph = self.graph_of(model, parent.functions)
        return Subgraph(compile(graph, self), [vi.name for vi in graph.inputs],
                        [vi.name for vi in graph.outputs])

    def evaluate(self, model: ModelProto) -> list[Any]:
        """Run an input-free model on the session's providers (constant folding); return its
        outputs in host memory."""
        graph = self.graph_of(model)
        plan = compile(graph, self)
        values = plan.new_values()
        quiet = quiet_fp_begin()
        try:
            execute(plan, values)
        finally:
            quiet_fp_end(quiet)
        return [plan.host_output(vi.name, values[plan.output_slots[vi.name]])
                for vi in graph.outputs]


def compile(graph: Graph, context: SessionCompileContext,  # noqa: A001 - the compiler's verb
            input_locations: Mapping[str, ExecutionProvider] | None = None,
            providers: Sequence[ExecutionProvider] | None = None, fuse: bool = True,
            partition: Partition | None = None) -> Plan:
    """Compile ``graph`` into a plan over ``providers`` (default: the context's).

    ``input_locations`` names inputs fed in a provider's device memory (IOBinding, fused units
    on a device); the others are fed in host memory. ``fuse=False`` takes the nodes of a
    provider's fused groups one by one (compiling such a group with its own kernels). A
    ``partition`` made for the same graph before is reused (the same graph bound to inputs on
    other devices)."""
    with paused_gc():  # a plan is a few dozen long-lived objects per node
        part = partition
        if part is None:
            chosen = list(context.providers if providers is None else providers)

            def expand(node: Node) -> KernelDef | None:
                body = function_body(graph, node)
                return None if body is None else function_kernel(graph, node, body)

            part = assign_nodes(graph, chosen, context.registry, fuse, expand)
        if part.unclaimed:
            raise OrtNotImplemented(explain_all_unclaimed(graph, part))
        return _PlanBuilder(graph, part, context, input_locations).build()


def node_attributes(graph: Graph, node: Node) -> dict[str, Any]:
    """The node's attributes as Python values, with the op schema's defaults filled in; a
    node of a declared (non-ONNX) op is checked against its declaration first."""
    opset = graph.opset_of(node.domain)
    if opset is not None and node.proto is not None and len(graph.schemas):
        declared = graph.schemas.lookup(node.domain, node.op_type, opset)
        if declared is not None and graph.onnx_schema(node) is None:
            declared.check(node.proto, node.describe())
    attrs = graph.attribute_defaults(node)
    for attr in node.attributes:
        if attr.ref_attr_name:
            raise InvalidGraph(
                f"{node.describe()} uses attribute reference '{attr.ref_attr_name}' outside a "
                "function")
        attrs[attr.name] = attribute_value(attr)
    return attrs


#: (dtype, shape) of an omitted optional input or output.
_UNKNOWN = (None, None)


class _PlanBuilder:
    """Builds one :class:`Plan`: slots, copies, prepared kernels, lifetimes."""

    def __init__(self, graph: Graph, part: Partition, context: SessionCompileContext,
                 input_locations: Mapping[str, ExecutionProvider] | None) -> None:
        self.graph = graph
        self.partition = part
        self.context = context
        self.slots: dict[str, int] = {"": NONE_SLOT}
        self.template: list[Any] = [None, None]
        self.location: dict[int, ExecutionProvider | None] = {}  # None: host memory
        self.copies: dict[tuple[int, str], int] = {}
        self.steps: list[Step] = []
        overridable = {vi.name for vi in graph.overridable}
        self.constants = {n for n in graph.initializers if n not in overridable}
        self.placed = dict(input_locations or {})

    def build(self) -> Plan:
        graph = self.graph
        for vi in graph.inputs:
            self.location[self._slot(vi.name)] = self.placed.get(vi.name)
        for name, value in graph.initializers.items():
            slot = self._slot(name)
            self.template[slot] = value
            self.location[slot] = self.placed.get(name)
        for name in graph.outer_scope:
            self.location[self._slot(name)] = None
        for assignment in self.partition.assignments:
            self._add_node(assignment)
        output_slots: dict[str, int] = {}
        output_location: dict[str, ExecutionProvider | None] = {}
        for vi in graph.outputs:
            if vi.name not in self.slots:
                raise InvalidGraph(
                    f"This is an invalid model. Graph output '{vi.name}' is not produced by any "
                    "node, input or initializer")
            slot = self.slots[vi.name]
            output_slots[vi.name] = slot
            output_location[vi.name] = self.location.get(slot)
        input_slots = {vi.name: self.slots[vi.name]
                       for vi in list(graph.inputs) + list(graph.overridable)}
        self._compute_lifetimes(set(output_slots.values()))
        return Plan(graph, self.partition, self.steps, self.slots, self.template, input_slots,
                    output_slots, output_location)

    def _slot(self, name: str) -> int:
        slot = self.slots.get(name)
        if slot is None:
            slot = self.slots[name] = len(self.template)
            self.template.append(None)
        return slot

    def _read(self, name: str, provider: ExecutionProvider, host: bool) -> int:
        """Slot holding ``name`` where ``provider`` (or the host) can read it; adds a copy."""
        slot = self.slots[name]
        source = self.location.get(slot)  # None: host memory
        want_host = host or provider.device.is_host
        if want_host and source is None:
            return slot
        if not want_host and source is not None and source.device == provider.device:
            return slot
        target_key = "host" if want_host else str(provider.device)
        key = (slot, target_key)
        if key in self.copies:
            return self.copies[key]
        copy_slot = self._slot(f"{name}@{target_key}")
        self.location[copy_slot] = None if want_host else provider
        self.copies[key] = copy_slot
        to_host = source.to_host if source is not None else None
        to_device = None if want_host else provider.to_device

        def copy(value: Any, _to_host=to_host, _to_device=to_device) -> tuple[Any]:
            if _to_host is not None:
                value = _to_host(value)
            if _to_device is not None:
                value = _to_device(value)
            return (value,)

        if name in self.constants and self.template[slot] is not None:
            self.template[copy_slot] = copy(self.template[slot])[0]
        else:
            label = ("MemcpyToHost" if want_host else "MemcpyFromHost", f"copy_{name}")
            provider_name = source.name if want_host and source is not None else provider.name
            self.steps.append(Step(copy, [slot], [copy_slot], label, provider_name))
        return copy_slot

    def _node_info(self, assignment: Assignment, implicit: list[str]) -> NodeInfo:
        graph, node, provider = self.graph, assignment.node, assignment.provider
        facts = graph.tensor_facts
        inputs = [facts(n) if n else _UNKNOWN for n in node.inputs]
        outputs = [facts(n) if n else _UNKNOWN for n in node.outputs]
        return NodeInfo(
            name=node.name,
            op_type=node.op_type,
            domain=node.domain,
            opset=graph.opset_of(node.domain) or 1,
            since_version=graph.since_version(node),
            attrs=node_attributes(graph, node),
            input_names=list(node.inputs),
            output_names=list(node.outputs),
            input_dtypes=[dtype for dtype, _ in inputs],
            output_dtypes=[dtype for dtype, _ in outputs],
            input_shapes=[shape for _, shape in inputs],
            output_shapes=[shape for _, shape in outputs],
            const_inputs=[graph.initializers.get(n) if n in self.constants else None
                          for n in node.inputs],
            xp=provider.xp,
            provider=provider,
            graph=graph,
            implicit_input_names=implicit,
            context=self.context,
        )

    def _add_node(self, assignment: Assignment) -> None:
        node, provider, kernel = assignment.node, assignment.provider, assignment.kernel
        host_inputs = kernel.host_inputs
        shape_only = kernel.shape_only_inputs
        input_slots = []
        for i, name in enumerate(node.inputs):
            if not name:
                input_slots.append(NONE_SLOT)
                continue
            if name not in self.slots:
                raise InvalidGraph(f"{node.describe()} reads '{name}', which is never produced")
            if i in shape_only:  # only .shape/.dtype are read: no copy from any device
                input_slots.append(self.slots[name])
                continue
            input_slots.append(self._read(name, provider, i in host_inputs))
        implicit = [name for name in node.implicit_inputs if name in self.slots]
        input_slots.extend(self._read(name, provider, True) for name in implicit)
        info = self._node_info(assignment, implicit)
        compute = _prepare(kernel, info, provider)
        output_slots = []
        location = None if provider.device.is_host else provider
        for name in node.outputs:
            if not name:
                output_slots.append(DISCARD_SLOT)
                continue
            slot = self._slot(name)
            self.location[slot] = location
            output_slots.append(slot)
        parameter_bytes = 0
        for value in info.const_inputs:
            if value is not None:
                parameter_bytes += int(getattr(value, "nbytes", 0))
        self.steps.append(Step(compute, input_slots, output_slots, (node.op_type, node.name),
                               provider.name, node.index, parameter_bytes))

    def _compute_lifetimes(self, outputs: set[int]) -> None:
        keep = outputs | {NONE_SLOT, DISCARD_SLOT}
        last_use: dict[int, int] = {}
        for position, step in enumerate(self.steps):
            for slot in step.inputs:
                last_use[slot] = position
            for slot in step.outputs:
                last_use.setdefault(slot, position)
        for slot, position in last_use.items():
            if slot not in keep:
                self.steps[position].frees.append(slot)
        # unused optional outputs land in the discard slot: clear it after every step using it
        for step in self.steps:
            if DISCARD_SLOT in step.outputs:
                step.frees.append(DISCARD_SLOT)


def _prepare(kernel: KernelDef, info: NodeInfo, provider: ExecutionProvider) -> Any:
    """Call the kernel's factory; its errors become ort's typed errors naming the node."""
    try:
        return kernel.factory(info)
    except OrtError:
        raise
    except NotImplementedError as exc:
        raise OrtNotImplemented(f"{info.describe()} ({provider.name}): {exc}") from exc
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        text = str(exc)  # kernels name the node themselves; name it once
        where = "" if text.startswith(info.describe()) else f"{info.describe()}: "
        raise InvalidGraph(f"This is an invalid model. {where}{text}") from exc
    except Exception as exc:
        raise Fail(f"Preparing {info.describe()} on {provider.name} failed: {exc}") from exc
