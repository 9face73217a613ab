"""CPU kernels: control flow (If, Loop, Scan) and SequenceMap.

Each kernel compiles its subgraph(s) once at session creation (``node.subgraph(name)``, a
nested plan over the session's providers) and runs them per call. Outer-scope values the
subgraphs read arrive after the node's regular inputs, in ``node.implicit_input_names`` order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo
from ort.ep import CompiledGraph

kernels = KernelTable()


def _split_outer(node: NodeInfo, args: tuple[Any, ...]) -> tuple[list[Any], dict[str, Any]]:
    """Separate a compute call's arguments into regular inputs and outer-scope values."""
    n_outer = len(node.implicit_input_names)
    regular = list(args[: len(args) - n_outer]) if n_outer else list(args)
    outer = dict(zip(node.implicit_input_names, args[len(args) - n_outer:])) if n_outer else {}
    return regular, outer


def _scalar_bool(node: NodeInfo, value: Any, what: str) -> bool:
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"{node.describe()}: {what} must hold exactly one element, "
                         f"got shape {array.shape}")
    return bool(array.reshape(-1)[0])


def _body_input_shaper(body: CompiledGraph, index: int):
    """Shape a scalar fed to body input ``index`` as the body declares it ([] or [1])."""
    types = body.input_types
    tp = types[index] if index < len(types) else None
    if tp is not None and tp.WhichOneof("value") == "tensor_type":
        tensor = tp.tensor_type
        if tensor.HasField("shape") and len(tensor.shape.dim) == 1:
            return lambda a: a.reshape(1)
    return lambda a: a


def _empty_like_output(body: CompiledGraph, index: int, leading: tuple[int, ...]) -> np.ndarray:
    """An empty stacked output for a body output that was never produced."""
    dtype = body.output_dtype(index) or np.dtype(np.float32)
    tp = body.output_types[index]
    trailing: tuple[int, ...] = ()
    if tp is not None and tp.WhichOneof("value") == "tensor_type" and tp.tensor_type.HasField("shape"):
        dims = tp.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            trailing = tuple(d.dim_value for d in dims)
    return np.zeros(leading + trailing, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# If


@kernels.register("If", 1)
def if_(node: NodeInfo):
    """If 1+: run ``then_branch`` or ``else_branch`` by a one-element boolean condition;
    the outputs are the branch's outputs."""
    then_branch = node.subgraph("then_branch")
    else_branch = node.subgraph("else_branch")
    for branch in (then_branch, else_branch):
        if len(branch.output_names) != node.num_outputs:
            raise ValueError(f"{node.describe()}: a branch has {len(branch.output_names)} "
                             f"outputs, the node {node.num_outputs}")

    def compute(*args):
        (cond,), outer = _split_outer(node, args)
        branch = then_branch if _scalar_bool(node, cond, "the condition") else else_branch
        return tuple(branch.run([], outer))

    return compute


# ---------------------------------------------------------------------------------------------
# Loop


@kernels.register("Loop", 1)
def loop(node: NodeInfo):
    """Loop 1+: run ``body`` while the trip count ``M`` and the condition allow; loop-carried
    values thread through iterations, scan outputs are stacked along a new first axis."""
    body = node.subgraph("body")
    n_carried = node.num_inputs - 2
    n_body_outputs = len(body.output_names)
    n_scan = n_body_outputs - 1 - n_carried
    if n_scan < 0 or len(body.input_names) != n_carried + 2:
        raise ValueError(
            f"{node.describe()}: the body must take 2 + {n_carried} inputs and return "
            f"1 + {n_carried} + scan outputs; it takes {len(body.input_names)} and returns "
            f"{n_body_outputs}"
        )
    shape_iteration = _body_input_shaper(body, 0)
    shape_cond = _body_input_shaper(body, 1)

    def compute(*args):
        regular, outer = _split_outer(node, args)
        trip_count, cond = regular[0], regular[1]
        carried = regular[2:2 + n_carried]
        max_trips = None if trip_count is None else int(np.asarray(trip_count).reshape(-1)[0])
        keep_going = True if cond is None else _scalar_bool(node, cond, "cond")
        scans: list[list[Any]] = [[] for _ in range(n_scan)]
        iteration = 0
        while keep_going and (max_trips is None or iteration < max_trips):
            results = body.run(
                [shape_iteration(np.array(iteration, dtype=np.int64)),
                 shape_cond(np.array(keep_going)), *carried],
                outer,
            )
            keep_going = _scalar_bool(node, results[0], "the body's condition output")
            carried = results[1:1 + n_carried]
            for collected, value in zip(scans, results[1 + n_carried:]):
                collected.append(value)
            iteration += 1
        stacked = []
        for j, collected in enumerate(scans):
            if collected:
                stacked.append(np.stack([np.asarray(v) for v in collected]))
            else:
                stacked.append(_empty_like_output(body, 1 + n_carried + j, (0,)))
        return tuple(carried) + tuple(stacked)

    return compute


# ---------------------------------------------------------------------------------------------
# Scan


def _run_scan(node: NodeInfo, body: CompiledGraph, states: list[Any], scan_inputs: list[np.ndarray],
              in_axes: list[int], in_reverse: list[bool], out_axes: list[int],
              out_reverse: list[bool], outer: dict[str, Any], steps: int | None = None
              ) -> tuple[list[Any], list[np.ndarray]]:
    """One Scan over ``scan_inputs`` (no batch axis): final states and stacked scan outputs."""
    lengths = {x.shape[axis] for x, axis in zip(scan_inputs, in_axes)}
    if len(lengths) > 1:
        raise ValueError(f"{node.describe()}: scan inputs have different sequence lengths "
                         f"{sorted(lengths)}")
    length = lengths.pop() if lengths else 0
    if steps is not None:
        length = min(length, steps)
    n_states = len(states)
    collected: list[list[Any]] = [[] for _ in range(len(body.output_names) - n_states)]
    for t in range(length):
        slices = [np.take(x, (length - 1 - t) if rev else t, axis=axis)
                  for x, axis, rev in zip(scan_inputs, in_axes, in_reverse)]
        results = body.run([*states, *slices], outer)
        states = results[:n_states]
        for values, value in zip(collected, results[n_states:]):
            values.append(np.asarray(value))
    outputs = []
    for j, values in enumerate(collected):
        if not values:
            outputs.append(_empty_like_output(body, n_states + j, (0,)))
            continue
        if out_reverse[j]:
            values = values[::-1]
        outputs.append(np.stack(values, axis=out_axes[j] % (values[0].ndim + 1)))
    return states, outputs


def _axes(node: NodeInfo, name: str, count: int) -> list[int]:
    values = node.attrs.get(name)
    if values is None:
        return [0] * count
    if len(values) != count:
        raise ValueError(f"{node.describe()}: '{name}' has {len(values)} entries, expected {count}")
    return [int(v) for v in values]


@kernels.register("Scan", 8, 8)
def scan_8(node: NodeInfo):
    """Scan 8: like Scan 9 but every input carries a leading batch axis and the optional
    first input ``sequence_lens`` bounds each batch entry's steps (outputs zero-padded)."""
    body = node.subgraph("body")
    n_scan_inputs = int(node.attrs["num_scan_inputs"])
    n_states = node.num_inputs - 1 - n_scan_inputs
    reverse = [bool(d) for d in _axes(node, "directions", n_scan_inputs)]
    n_scan_outputs = len(body.output_names) - n_states

    def compute(*args):
        regular, outer = _split_outer(node, args)
        sequence_lens = regular[0]
        states = regular[1:1 + n_states]
        scan_inputs = regular[1 + n_states:]
        batch = (states[0] if states else scan_inputs[0]).shape[0]
        max_len = scan_inputs[0].shape[1] if scan_inputs else 0
        final_states: list[list[Any]] = [[] for _ in range(n_states)]
        outputs: list[list[np.ndarray]] = [[] for _ in range(n_scan_outputs)]
        for b in range(batch):
            steps = max_len if sequence_lens is None else int(np.asarray(sequence_lens)[b])
            state_b, out_b = _run_scan(
                node, body, [s[b] for s in states], [x[b, :steps] for x in scan_inputs],
                [0] * n_scan_inputs, reverse, [0] * n_scan_outputs, [False] * n_scan_outputs,
                outer)
            for collected, value in zip(final_states, state_b):
                collected.append(np.asarray(value))
            for collected, value in zip(outputs, out_b):
                if value.shape[0] < max_len:  # zero-pad short sequences
                    pad = [(0, max_len - value.shape[0])] + [(0, 0)] * (value.ndim - 1)
                    value = np.pad(value, pad)
                collected.append(value)
        return tuple(np.stack(v) for v in final_states) + tuple(np.stack(v) for v in outputs)

    return compute


@kernels.register("Scan", 9)
def scan(node: NodeInfo):
    """Scan 9+: iterate ``body`` over slices of the scan inputs along ``scan_input_axes``
    (reversed per ``scan_input_directions``), threading state variables; scan outputs are
    stacked along ``scan_output_axes`` (reversed per ``scan_output_directions``)."""
    body = node.subgraph("body")
    n_scan_inputs = int(node.attrs["num_scan_inputs"])
    n_states = node.num_inputs - n_scan_inputs
    n_scan_outputs = len(body.output_names) - n_states
    in_axes = _axes(node, "scan_input_axes", n_scan_inputs)
    in_reverse = [bool(d) for d in _axes(node, "scan_input_directions", n_scan_inputs)]
    out_axes = _axes(node, "scan_output_axes", n_scan_outputs)
    out_reverse = [bool(d) for d in _axes(node, "scan_output_directions", n_scan_outputs)]

    def compute(*args):
        regular, outer = _split_outer(node, args)
        states = regular[:n_states]
        scan_inputs = regular[n_states:]
        axes = [axis % x.ndim for axis, x in zip(in_axes, scan_inputs)]
        final, outputs = _run_scan(node, body, states, scan_inputs, axes, in_reverse,
                                   out_axes, out_reverse, outer)
        return tuple(final) + tuple(outputs)

    return compute


# ---------------------------------------------------------------------------------------------
# SequenceMap


@kernels.register("SequenceMap", 17)
def sequence_map(node: NodeInfo):
    """SequenceMap 17+: apply ``body`` to each element of the input sequence; additional
    inputs are sequences (taken element by element) or tensors (passed whole); each body
    output becomes a sequence."""
    body = node.subgraph("body")
    n_outputs = len(body.output_names)

    def compute(*args):
        regular, outer = _split_outer(node, args)
        sequence, extra = regular[0], regular[1:]
        for item in extra:
            if isinstance(item, list) and len(item) != len(sequence):
                raise ValueError(f"{node.describe()}: sequence inputs have different lengths "
                                 f"{len(sequence)} and {len(item)}")
        results: list[list[Any]] = [[] for _ in range(n_outputs)]
        for i, element in enumerate(sequence):
            inputs = [element] + [item[i] if isinstance(item, list) else item for item in extra]
            for collected, value in zip(results, body.run(inputs, outer)):
                collected.append(value)
        return tuple(results)

    return compute
