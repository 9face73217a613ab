"""Session creation does work linear in the model's size (issue 15; timings are in
``benchmarks/load_time.py``, these tests time nothing).

The work is counted, not timed: the Python lines executed while a session is created, traced
with ``sys.settrace``. A linear creation executes about 4x the lines for a model 4x the size; a
pass that re-walks the graph per node, a scan per match or a topological sort by repeated
sweeps over a graph listed backwards makes that 10x and more. Work in C (protobuf, onnx's shape
inference) is not counted.
"""

from __future__ import annotations

import gc
import random
import sys
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort import ep
from ort.ep import FusedSubgraph, KernelTable, ProviderSpec
from ort.ir.gc_pause import paused_gc
from ort.optimizer import OptimizerContext, optimize_model
from ort.optimizer.view import GraphView, _order_of

#: The line count of a model 4x the size over that of the smaller one: linear is 4 at most
#: (fixed costs bring it under), anything quadratic pushes it past 10 at these sizes.
MAX_GROWTH = 5.0
SMALL, LARGE = 1000, 4000


def _chain(kind: str, nodes: int, backwards: bool = False) -> onnx.ModelProto:
    """``x`` -> ``nodes`` nodes -> ``y``: ``relu`` is Relu after Relu; ``add_relu`` alternates
    an Add of a [16] initializer (seven distinct values, so CSE merges them) with a Relu.
    ``backwards`` lists the nodes last first (ONNX Runtime sorts such a graph)."""
    graph_nodes, initializers, previous = [], [], "x"
    for i in range(nodes):
        out = f"v{i}" if i < nodes - 1 else "y"
        if kind == "add_relu" and i % 2 == 0:
            initializers.append(numpy_helper.from_array(
                np.full(16, (i % 7) * 0.01 - 0.02, np.float32), f"b{i}"))
            graph_nodes.append(helper.make_node("Add", [previous, f"b{i}"], [out], name=f"n{i}"))
        else:
            graph_nodes.append(helper.make_node("Relu", [previous], [out], name=f"n{i}"))
        previous = out
    if backwards:
        graph_nodes.reverse()
    graph = helper.make_graph(
        graph_nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _lines_to_create(model: onnx.ModelProto, level: int = 99,
                     providers: Sequence[str] = ("CPUExecutionProvider",)) -> int:
    """Python lines (and calls) executed while creating a session of ``model``."""
    data = model.SerializeToString()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel(level)
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        count += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        ort.InferenceSession(data, options, providers=list(providers))
    finally:
        sys.settrace(previous)
    return count


@pytest.mark.parametrize("backwards", [False, True], ids=["in_order", "backwards"])
@pytest.mark.parametrize("kind", ["relu", "add_relu"])
def test_session_creation_work_grows_linearly_with_the_model(kind, backwards):
    _lines_to_create(_chain(kind, 50, backwards))  # lazy imports and caches filled
    small = _lines_to_create(_chain(kind, SMALL, backwards))
    large = _lines_to_create(_chain(kind, LARGE, backwards))
    assert large / small <= MAX_GROWTH, (
        f"creating a {kind} chain of {LARGE} nodes executed {large} Python lines, "
        f"{large / small:.1f}x the {small} of {SMALL} nodes: some step is not linear")


class PairsProvider(ort.ExecutionProvider):
    """Claims the Relu nodes two by two as fused groups (run by its own Relu kernel)."""

    name: ClassVar[str] = "PairsExecutionProvider"

    def get_capability(self, graph, lookup):
        mine = [node.index for node in graph.nodes if lookup(node) is not None]
        return [FusedSubgraph(mine[i:i + 2]) for i in range(0, len(mine) - 1, 2)]


pair_kernels = KernelTable()


@pair_kernels.register("Relu", since=1)
def _pair_relu(node):
    return lambda x: (np.maximum(x, 0),)


class _PairsPlugin:
    @ort.hookimpl
    def ort_register_providers(self, registry):
        registry.register(ProviderSpec(name=PairsProvider.name, factory=PairsProvider,
                                       priority=10))

    @ort.hookimpl
    def ort_register_kernels(self, registry):
        registry.add(PairsProvider.name, pair_kernels)


@pytest.fixture
def pairs_plugin():
    ep.register_plugin(_PairsPlugin(), "pairs")
    yield
    ep.unregister_plugin("pairs")


def test_fused_groups_cost_the_same_per_node_in_any_size_of_graph(pairs_plugin):
    """Placing a fused group scanned every node of the graph for readers of its outputs."""
    providers = [PairsProvider.name, "CPUExecutionProvider"]

    def lines(nodes: int) -> int:
        return _lines_to_create(_chain("relu", nodes), 0, providers)

    lines(50)
    small, large = lines(SMALL // 2), lines(LARGE // 2)
    assert large / small <= MAX_GROWTH, (small, large)
    session = ort.InferenceSession(_chain("relu", 6).SerializeToString(), providers=providers)
    assert session.get_partition().nodes_by_provider[PairsProvider.name] == [
        f"{PairsProvider.name}_fused_{i}" for i in range(3)]
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], np.maximum(x, 0))


def test_optimizer_indexes_the_graph_as_often_for_any_size(monkeypatch):
    """Passes share one index of the graph until one changes it: the number of index builds
    depends on what the passes change, never on how many nodes there are."""
    builds = 0
    original = GraphView._build_index

    def counting(self):
        nonlocal builds
        builds += 1
        original(self)

    monkeypatch.setattr(GraphView, "_build_index", counting)
    counts = []
    for nodes in (100, 1000):
        builds = 0
        context = OptimizerContext(has_kernel=lambda domain, op, version: True)
        optimize_model(_chain("add_relu", nodes), 99, context)
        counts.append(builds)
    assert counts[0] == counts[1], counts
    assert counts[0] <= 4, counts  # one per round that changed something, and the last


def _sweeps(reads, producer, ready):
    """The optimizer's topological order as it was defined: sweep the nodes in order again
    and again, placing each node whose producers are placed; the rest keep their order."""
    needs = [{producer[n] for n in names if n not in ready and n in producer} for names in reads]
    done, order, pending = set(), [], list(range(len(reads)))
    while pending:
        rest = []
        for i in pending:
            if needs[i] <= done:
                order.append(i)
                done.add(i)
            else:
                rest.append(i)
        if len(rest) == len(pending):
            order.extend(rest)
            break
        pending = rest
    return order


def test_topological_order_is_that_of_repeated_sweeps():
    """The one-pass order equals the sweeps' on random graphs: out of order, cyclic, values
    produced twice or never, graph inputs shadowing node outputs."""
    rng = random.Random(0)
    for _ in range(3000):
        count = rng.randint(0, 12)
        producer: dict[str, int] = {}
        for i in range(count):
            producer[f"v{rng.randint(0, 14)}"] = i
        reads = [{f"v{rng.randint(0, 16)}" for _ in range(rng.randint(0, 3))} | {""}
                 for _ in range(count)]
        ready = {f"v{k}" for k in range(15) if rng.random() < 0.1}
        assert _order_of(reads, producer, ready) == _sweeps(reads, producer, ready)


@pytest.mark.parametrize("level", [0, 1, 99])
@pytest.mark.parametrize("kind", ["relu", "add_relu"])
def test_nodes_listed_backwards_run_as_onnxruntime_runs_them(kind, level):
    """Dead-node elimination walked the nodes last to first and took every node of a graph
    listed backwards for dead (session creation then failed at level 1 and above)."""
    data = _chain(kind, 40, backwards=True).SerializeToString()
    x = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    want = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel(level)
    got = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_unique_names_take_the_smallest_free_suffix():
    model = _chain("relu", 3)
    model.graph.node[0].name = "fused_2"
    view = GraphView(model, OptimizerContext(has_kernel=lambda *args: True))
    assert [view.unique_name("fused") for _ in range(4)] == ["fused", "fused_1", "fused_3",
                                                             "fused_4"]
    assert view.unique_name("n1") == "n1_1"


def test_paused_gc_nests_and_leaves_a_switched_off_collector_off():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_round_stops_where_the_passes_left_saw_the_same_model(monkeypatch):
    """Passes after the last one that changed the model saw the round's final model and left
    it alone: the next round runs only up to that pass, unless an earlier one changes it."""
    import ort.optimizer as optimizer

    calls: list[str] = []
    fires = {"A": [], "B": [True, True], "C": []}  # (False once a list runs out)

    def make(name):
        def run(model, context):
            calls.append(name)
            return fires[name].pop(0) if fires[name] else False
        return run

    monkeypatch.setattr(optimizer, "PASSES", tuple((1, n, make(n)) for n in "ABC"))
    context = OptimizerContext(has_kernel=lambda *args: True)
    model = _chain("relu", 2)
    assert optimize_model(model, 1, context) is not model
    # round 1: B changes the model; round 2: A, B (which changes it again), and C, which must
    # see the new model; round 3: A and B leave it as it is, and C saw this very model at the
    # end of round 2: done without it
    assert calls == ["A", "B", "C", "A", "B", "C", "A", "B"]
