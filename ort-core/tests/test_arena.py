"""The host memory arena (ort.runtime.arena) and its use by sessions (enable_cpu_mem_arena)."""

import threading

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort
from ort.runtime.arena import MIN_BYTES, HostArena, arena_supported

from ort.testing import make_model

BIG = (1024, 1024)  # 4 MiB of float32: at the arena's threshold


def _buffer_id(array):
    return id(array.base)


def test_free_buffer_is_reused_and_held_one_is_not():
    arena = HostArena()
    a = arena.empty(BIG, np.float32)
    first = _buffer_id(a)
    b = arena.empty(BIG, np.float32)
    assert _buffer_id(b) != first
    del a
    c = arena.empty(BIG, np.float32)
    assert _buffer_id(c) == first
    view = c.reshape(-1)[7:]  # a view alone keeps the buffer in use
    del c
    d = arena.empty(BIG, np.float32)
    assert _buffer_id(d) != first
    assert view.base is not None


def test_shape_dtype_and_small_arrays():
    arena = HostArena()
    a = arena.empty((3, 1000, 200), np.float64)
    assert a.shape == (3, 1000, 200) and a.dtype == np.float64 and a.flags.c_contiguous
    assert a.flags.writeable and a.flags.aligned
    small = arena.empty((4, 4), np.float32)
    assert small.base is None and arena.bytes_held >= a.nbytes
    obj = arena.empty((MIN_BYTES,), object)
    assert obj.dtype == object and obj.base is None


def test_same_size_class_serves_different_shapes():
    arena = HostArena()
    a = arena.empty((1000, 1100), np.float32)
    first = _buffer_id(a)
    del a
    b = arena.empty((1100, 1001), np.float32)  # within the 12.5% size class
    assert _buffer_id(b) == first and b.shape == (1100, 1001)


def test_limit_is_respected_by_dropping_free_buffers():
    arena = HostArena(limit_bytes=13 << 20)
    held = [arena.empty(BIG, np.float32) for _ in range(3)]
    assert arena.bytes_held == 3 * (4 << 20)
    extra = arena.empty(BIG, np.float32)  # no room, nothing free: plain numpy array
    assert extra.base is None and arena.bytes_held == 3 * (4 << 20)
    del held[0]
    other = arena.empty((1024, 1100), np.float32)  # another size class: the free buffer goes
    assert other.base is not None and other.shape == (1024, 1100)
    assert arena.bytes_held == 2 * (4 << 20) + 4718592


def test_end_run_trims_buffers_unused_for_two_runs():
    arena = HostArena()
    kept = arena.empty(BIG, np.float32)
    freed = arena.empty((2048, 1024), np.float32)
    del freed
    for _ in range(3):
        arena.end_run()
    assert arena.bytes_held == kept.nbytes  # the one still in use stays


def test_concurrent_takers_never_share_a_buffer():
    arena = HostArena()
    clashes = []

    def worker(seed):
        for i in range(200):
            a = arena.empty(BIG, np.float32)
            a.fill(seed)
            if not (a == seed).all():
                clashes.append(seed)
            del a

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not clashes


def _conv_model():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((32, 3, 3, 3)).astype(np.float32), "W")
    nodes = [helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["C"], ["R"]),
             helper.make_node("Add", ["R", "C"], ["Y"]),
             helper.make_node("MatMul", ["Y", "Y"], ["Z"])]
    return make_model(
        nodes, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3, 128, 128])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("Z", TensorProto.FLOAT, None)], [w])


@pytest.mark.skipif(not arena_supported(), reason="reference counts are not reliable here")
def test_outputs_kept_by_the_caller_are_never_overwritten():
    sess = ort.InferenceSession(_conv_model().SerializeToString(),
                                providers=["CPUExecutionProvider"])
    reference = ort.InferenceSession(_conv_model().SerializeToString(),
                                     _no_arena(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    kept, expected = [], []
    for _ in range(4):
        x = rng.standard_normal((4, 3, 128, 128)).astype(np.float32)
        outputs = sess.run(None, {"X": x})
        kept.append(outputs)
        expected.append([o.copy() for o in outputs])
        for got, want in zip(outputs, reference.run(None, {"X": x})):
            np.testing.assert_array_equal(got, want)
    for outputs, copies in zip(kept, expected):
        for got, want in zip(outputs, copies):
            np.testing.assert_array_equal(got, want)
    assert sess._arenas and sess._arenas[0].bytes_held > 0


def _no_arena():
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    return options


def test_session_arena_can_be_turned_off():
    sess = ort.InferenceSession(_conv_model().SerializeToString(), _no_arena(),
                                providers=["CPUExecutionProvider"])
    x = np.ones((4, 3, 128, 128), np.float32)
    y, _ = sess.run(None, {"X": x})
    assert y.base is None or not isinstance(y.base, np.ndarray) or y.base.dtype != np.uint8
    assert not sess._arenas


@pytest.mark.skipif(not arena_supported(), reason="reference counts are not reliable here")
@pytest.mark.parametrize("threads", [1, 2])
def test_runs_reuse_memory_instead_of_growing(threads):
    """Also when kernels split work over intra-op threads (a pool thread that kept a
    reference to its piece's output kept the arena from reusing it)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sess = ort.InferenceSession(_conv_model().SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    x = np.ones((4, 3, 128, 128), np.float32)
    sess.run(None, {"X": x})
    held = sess._arenas[0].bytes_held
    for _ in range(5):
        sess.run(None, {"X": x})
    assert sess._arenas[0].bytes_held == held
