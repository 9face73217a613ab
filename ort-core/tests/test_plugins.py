"""Plugin discovery: lazy, isolated, controllable from the environment; registrations checked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import ort
from ort import ep
from ort.ep import KernelTable
from ort.ep import DuplicateRegistrationError, ProviderSpec


def run_python(code: str, env: dict[str, str] | None = None, pythonpath: str | None = None) -> str:
    """Run ``code`` in a fresh interpreter; return its stdout (fails the test on error)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    if pythonpath:
        full_env["PYTHONPATH"] = pythonpath + os.pathsep + full_env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, env=full_env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_ort_loads_no_plugin_and_never_imports_cupy(tmp_path):
    # a fake cupy that records being imported: importing ort must not touch it
    (tmp_path / "cupy.py").write_text("import sys; sys.stderr.write('cupy imported\\n')\n")
    out = run_python(
        """
        import sys, ort
        print('cupy' in sys.modules, 'ort_provider_cpu' in sys.modules)
        ort.get_all_providers()
        print('cupy' in sys.modules, 'ort_provider_cpu' in sys.modules)
        """,
        pythonpath=str(tmp_path),
    )
    assert out.split() == ["False", "False", "False", "True"]


def test_autoload_can_be_disabled_and_plugins_blocked():
    out = run_python(
        """
        import ort
        print(ort.get_all_providers())
        try:
            ort.InferenceSession(b"")
        except Exception as e:
            print(type(e).__name__)
        """,
        env={"ORT_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert out.splitlines()[0] == "[]"
    out = run_python("import ort; print(ort.get_all_providers())", env={"ORT_PLUGINS_BLOCK": "cuda"})
    assert "CUDAExecutionProvider" not in out and "CPUExecutionProvider" in out


def test_no_provider_installed_gives_actionable_error(add_model):
    out = run_python(
        f"""
        import ort
        try:
            ort.InferenceSession({add_model.SerializeToString()!r})
        except ort.EPFail as e:
            print(e)
        """,
        env={"ORT_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert "pip install ort-provider-cpu" in out


def test_broken_entry_point_plugin_is_reported_not_fatal(tmp_path):
    dist = tmp_path / "ort_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ort-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ort]\nbroken = ort_broken_plugin\n")
    (tmp_path / "ort_broken_plugin.py").write_text("raise ImportError('missing vendor SDK')\n")
    out = run_python(
        """
        import warnings, ort
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            print(ort.get_available_providers())
        print([f.plugin for f in ort.ep.plugin_failures()])
        print(any('missing vendor SDK' in str(x.message) for x in w))
        """,
        pythonpath=str(tmp_path),
    )
    lines = out.splitlines()
    assert "CPUExecutionProvider" in lines[0]
    assert lines[1] == "['broken']" and lines[2] == "True"


class _Plugin:
    """An in-process plugin registered with ort.ep.register_plugin."""

    def __init__(self, providers=(), kernels=(), fail=False):
        self.providers, self.kernels, self.fail = providers, kernels, fail

    @ort.hookimpl
    def ort_register_providers(self, registry):
        if self.fail:
            raise RuntimeError("hook exploded")
        for spec in self.providers:
            registry.register(spec)

    @ort.hookimpl
    def ort_register_kernels(self, registry):
        for provider, table in self.kernels:
            registry.add(provider, table)


@pytest.fixture
def extra_plugin():
    names = []

    def add(plugin, name):
        names.append(name)
        ep.register_plugin(plugin, name)

    yield add
    for name in names:
        ep.unregister_plugin(name)


def test_hook_that_raises_is_isolated(extra_plugin):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        extra_plugin(_Plugin(fail=True), "exploding")
        assert "CPUExecutionProvider" in ort.get_available_providers()
    assert [f.plugin for f in ep.plugin_failures()] == ["exploding"]
    assert "hook exploded" in ep.plugin_failures()[0].error


def test_duplicate_kernel_registration_names_both_owners(extra_plugin):
    table = KernelTable()

    @table.register("Twice", since=1, domain="com.example")
    def twice(node):
        return lambda x: (x * 2,)

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        extra_plugin(_Plugin(kernels=[("CPUExecutionProvider", table)]), "first-twice")
        extra_plugin(_Plugin(kernels=[("CPUExecutionProvider", table)]), "second-twice")
        failures = ep.plugin_failures()
    assert len(failures) == 1 and isinstance(failures[0].exception, DuplicateRegistrationError)
    assert "'first-twice'" in failures[0].error and "'second-twice'" in failures[0].error


def test_provider_with_unmet_core_range_is_unavailable_with_reason(extra_plugin):
    spec = ProviderSpec(name="FutureExecutionProvider", factory=lambda o: None,
                        core_requires=">=9.0,<10", priority=50)
    extra_plugin(_Plugin(providers=[spec]), "future")
    assert "FutureExecutionProvider" in ort.get_all_providers()
    assert "FutureExecutionProvider" not in ort.get_available_providers()
    reason = ort.unavailable_providers()["FutureExecutionProvider"]
    assert "ort-core>=9.0,<10" in reason


def test_custom_op_kernel_from_a_plugin_runs(extra_plugin):
    from onnx import TensorProto, helper

    table = KernelTable()

    @table.register("Twice", since=1, domain="com.example")
    def twice(node):
        factor = node.attrs.get("factor", 2)
        return lambda x: (x * factor,)

    extra_plugin(_Plugin(kernels=[("CPUExecutionProvider", table)]), "twice")
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3])
    graph = helper.make_graph([helper.make_node("Twice", ["X"], ["Y"], domain="com.example", factor=3)],
                              "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)], ir_version=8)
    sess = ort.InferenceSession(model.SerializeToString())
    np.testing.assert_array_equal(sess.run(None, {"X": np.ones(3, np.float32)})[0], [3, 3, 3])


# -- a provider whose registration disagrees with what it declares ------------------------------

class _Misnamed(ort.ExecutionProvider):
    """A provider whose class says one name while its plugin registers another."""

    name = "MisnamedExecutionProvider"


def _relu_table():
    table = KernelTable()

    @table.register("Relu", since=6)
    def relu(node):
        return lambda x: (np.maximum(x, 0),)

    return table


def test_provider_registered_under_another_name_than_its_class_is_refused_loudly(extra_plugin):
    spec = ProviderSpec(name="RightExecutionProvider", factory=_Misnamed, priority=40)
    with pytest.warns(RuntimeWarning, match="misnamed-plugin.*set name = 'RightExecutionProvider'"):
        extra_plugin(_Plugin(providers=[spec], kernels=[("RightExecutionProvider", _relu_table())]),
                     "misnamed-plugin")
        ort.get_all_providers()
    assert "RightExecutionProvider" in ort.get_all_providers()
    assert "RightExecutionProvider" not in ort.get_available_providers()
    assert "misregistered" in ort.unavailable_providers()["RightExecutionProvider"]


def test_kernels_registered_under_another_name_than_the_provider_are_refused(extra_plugin):
    class Right(ort.ExecutionProvider):
        name = "RightExecutionProvider"

    spec = ProviderSpec(name="RightExecutionProvider", factory=Right, priority=40)
    with pytest.warns(RuntimeWarning, match="kernels under \\['WrongExecutionProvider'\\]"):
        extra_plugin(_Plugin(providers=[spec], kernels=[("WrongExecutionProvider", _relu_table())]),
                     "stray-kernels")
        ort.get_all_providers()
    assert "RightExecutionProvider" not in ort.get_available_providers()


def test_factory_function_returning_a_misnamed_provider_is_skipped_with_the_fix(extra_plugin):
    """A factory function hides the class from discovery: the session checks the instance."""
    spec = ProviderSpec(name="RightExecutionProvider", factory=lambda options: _Misnamed(options),
                        priority=40)
    extra_plugin(_Plugin(providers=[spec], kernels=[("RightExecutionProvider", _relu_table())]),
                 "misnamed-factory")
    assert "RightExecutionProvider" in ort.get_available_providers()  # not knowable yet
    from ort.testing import make_model
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    model = make_model([helper.make_node("Relu", ["X"], ["Y"])], [x],
                       [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])])
    with pytest.warns(UserWarning, match="set name = 'RightExecutionProvider'"):
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["RightExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert "RightExecutionProvider" not in ort.get_available_providers()


# -- op schemas declared by plugins ------------------------------------------------------------

class _SchemaPlugin:
    """Declares com.example:Scale (attribute factor=2.0 by default) and registers its kernel."""

    @ort.hookimpl
    def ort_register_schemas(self, registry):
        def infer(input_types, attrs):
            return [input_types[0]]  # same type and shape as the input

        registry.declare(ep.DeclaredSchema(
            op_type="Scale", domain="com.example", since_version=1, min_inputs=1,
            max_inputs=1, min_outputs=1, max_outputs=1, attributes={"factor": 2.0},
            infer=infer, doc="Y = factor * X"))

    @ort.hookimpl
    def ort_register_kernels(self, registry):
        table = KernelTable()

        @table.register("Scale", since=1, domain="com.example")
        def scale(node):
            factor = np.float32(node.attrs["factor"])  # the declared default when absent
            return lambda x: (x * factor,)

        registry.add("CPUExecutionProvider", table)


class _RepeatPlugin:
    """Declares com.example:Repeat(X, count): X tiled ``count`` times along axis 0, whose
    output shape depends on the constant ``count`` (a schema with ``uses_values``)."""

    @ort.hookimpl
    def ort_register_schemas(self, registry):
        from onnx import helper

        def infer(input_types, attrs, input_values):
            x = input_types[0].tensor_type
            count = input_values[1]
            dims = [d.dim_value or None for d in x.shape.dim]
            first = None if count is None or dims[0] is None else dims[0] * int(count)
            return [helper.make_tensor_type_proto(x.elem_type, [first] + dims[1:])]

        registry.declare(ep.DeclaredSchema(
            op_type="Repeat", domain="com.example", min_inputs=2, max_inputs=2,
            infer=infer, uses_values=True))

    @ort.hookimpl
    def ort_register_kernels(self, registry):
        table = KernelTable()

        @table.register("Repeat", since=1, domain="com.example")
        def repeat(node):
            return lambda x, count: (np.concatenate([x] * int(count)),)

        registry.add("CPUExecutionProvider", table)


@pytest.mark.parametrize("constant", [True, False])
def test_declared_inference_sees_constant_input_values(extra_plugin, constant):
    from onnx import TensorProto, helper, numpy_helper

    from ort.testing import make_model as build

    extra_plugin(_RepeatPlugin(), "repeat")
    count = np.array(3, np.int64)
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 4])]
    inits = [numpy_helper.from_array(count, "count")] if constant else []
    if not constant:
        inputs.append(helper.make_tensor_value_info("count", TensorProto.INT64, []))
    model = build([helper.make_node("Repeat", ["X", "count"], ["Y"], domain="com.example")],
                  inputs, [helper.make_empty_tensor_value_info("Y")], inits,
                  opsets={"com.example": 1})
    sess = ort.InferenceSession(model.SerializeToString())
    assert sess.get_outputs()[0].shape == ([6, 4] if constant else [None, 4])
    feeds = {"X": np.ones((2, 4), np.float32)}
    if not constant:
        feeds["count"] = count
    assert sess.run(None, feeds)[0].shape == (6, 4)


def _scale_model(**attrs):
    from onnx import TensorProto, helper

    from ort.testing import make_model as build

    nodes = [helper.make_node("Scale", ["X"], ["S"], domain="com.example", **attrs),
             helper.make_node("Relu", ["S"], ["Y"])]
    return build(nodes, [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 3])],
                 [helper.make_empty_tensor_value_info("Y")], opsets={"com.example": 1})


def test_declared_schema_gives_defaults_inference_and_validation(extra_plugin):
    extra_plugin(_SchemaPlugin(), "schemas")
    sess = ort.InferenceSession(_scale_model().SerializeToString())
    out = sess.run(None, {"X": np.array([[1, -2, 3]], np.float32)})[0]
    np.testing.assert_array_equal(out, [[2, 0, 6]])  # the declared default factor 2
    # ONNX cannot infer through com.example:Scale; the declaration carries the type on, so
    # the Relu after it and the graph output are typed
    (output,) = sess.get_outputs()
    assert output.type == "tensor(float)" and output.shape == ["batch", 3]
    with pytest.raises(ort.InvalidGraph, match="has no attribute\\(s\\) \\['facto'\\]"):
        ort.InferenceSession(_scale_model(facto=3.0).SerializeToString())
    declared = [s for s in ep.get_registry().schemas if s.domain == "com.example"]
    assert len(declared) == 1


def test_declared_schemas_stay_out_of_onnxs_registry(extra_plugin):
    import onnx

    extra_plugin(_SchemaPlugin(), "schemas")
    ort.InferenceSession(_scale_model().SerializeToString())
    with pytest.raises(onnx.defs.SchemaError):
        onnx.defs.get_schema("Scale", 1, "com.example")


def test_the_same_schema_declared_twice_names_both_plugins(extra_plugin):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        extra_plugin(_SchemaPlugin(), "first-schemas")
        extra_plugin(_SchemaPlugin(), "second-schemas")
        failures = ep.plugin_failures()
    assert any("'first-schemas'" in f.error and "'second-schemas'" in f.error for f in failures)
