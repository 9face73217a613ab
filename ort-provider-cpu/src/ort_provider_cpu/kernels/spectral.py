"""CPU kernels: signal processing (spectral): DFT, STFT, MelWeightMatrix, window functions.

Transforms use ``numpy.fft`` in double precision and round to the input's type. Complex values
travel as a trailing dimension of size 2 (real, imaginary); real signals have a trailing 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo
from ort.ep import np_dtype_of

kernels = KernelTable()

# Element types the generator ops (windows, MelWeightMatrix) may produce (their T2/T3).
_GENERATOR_TYPES = (1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 16)


def _output_dtype(node: NodeInfo) -> np.dtype:
    """Return the numpy dtype named by the ``output_datatype`` attribute, or raise."""
    element_type = int(node.attrs.get("output_datatype", 1))
    if element_type not in _GENERATOR_TYPES:
        raise ValueError(
            f"{node.describe()}: output_datatype {element_type} is not a numeric type"
        )
    return np_dtype_of(element_type)


def _scalar(value: Any, name: str, node: NodeInfo) -> int:
    """Return a scalar (or one-element) integer input as int."""
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"{node.describe()}: {name} must be a scalar, got shape {array.shape}")
    return int(array.reshape(()))


def _to_complex(x: np.ndarray) -> np.ndarray:
    """Drop the trailing real/imaginary dimension of ``x``.

    [..., 2] becomes complex, [..., 1] stays real; float64 inputs are transformed in double
    precision, every other float type in single precision (as numpy.fft does for float32).
    """
    real_dtype = np.float64 if x.dtype == np.float64 else np.float32
    if x.shape[-1] == 2:
        complex_dtype = np.complex128 if x.dtype == np.float64 else np.complex64
        signal = np.empty(x.shape[:-1], complex_dtype)
        signal.real = x[..., 0]
        signal.imag = x[..., 1]
        return signal
    return x[..., 0].astype(real_dtype)


def _complex_of(dtype: np.dtype) -> np.dtype:
    """The complex dtype transforms of a ``dtype`` signal compute in (see :func:`_to_complex`)."""
    return np.dtype(np.complex128 if dtype == np.float64 else np.complex64)


def _from_complex(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Stack real and imaginary parts into a trailing dimension of 2, cast to ``dtype``."""
    return np.stack([y.real, y.imag], axis=-1).astype(dtype)


# --------------------------------------------------------------------------------------------
# DFT
# --------------------------------------------------------------------------------------------


def _dft(node: NodeInfo, x: np.ndarray, axis: int, length: int | None, inverse: bool,
         onesided: bool) -> np.ndarray:
    """Return the (inverse, one-sided) DFT of ``x`` along ``axis`` as the op lays it out."""
    rank = x.ndim
    if rank < 2 or x.shape[-1] not in (1, 2):
        raise ValueError(
            f"{node.describe()}: input must end in a dimension of 1 (real) or 2 (complex), "
            f"got shape {x.shape}"
        )
    if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
        raise ValueError(f"{node.describe()}: axis {axis} is out of range for rank {rank}")
    axis = axis + rank if axis < 0 else axis
    if length is None:
        length = 2 * (x.shape[axis] - 1) if inverse and onesided else x.shape[axis]
    if length <= 0:
        raise ValueError(f"{node.describe()}: dft_length must be positive, got {length}")
    bins = length // 2 + 1 if onesided and not inverse else length
    node.check_output_size(x.shape[:axis] + (bins,) + x.shape[axis + 1:-1], _complex_of(x.dtype))
    signal = _to_complex(x)
    if not inverse and onesided:
        if x.shape[-1] == 2:
            raise ValueError(f"{node.describe()}: a one-sided DFT needs a real input")
        return _from_complex(np.fft.rfft(signal, n=length, axis=axis), x.dtype)
    if inverse and onesided:
        if x.shape[-1] == 1:
            raise ValueError(f"{node.describe()}: a one-sided inverse DFT needs a complex input")
        return np.fft.irfft(signal, n=length, axis=axis)[..., None].astype(x.dtype)
    transform = np.fft.ifft if inverse else np.fft.fft
    return _from_complex(transform(signal, n=length, axis=axis), x.dtype)


@kernels.register("DFT", since=17, until=19, host_inputs=(1,))
def dft_17(node: NodeInfo) -> Callable[..., tuple]:
    """DFT 17-19: discrete Fourier transform along the ``axis`` attribute (default 1)."""
    axis = int(node.attrs.get("axis", 1))
    inverse = bool(node.attrs.get("inverse", 0))
    onesided = bool(node.attrs.get("onesided", 0))

    def compute(x: Any, dft_length: Any = None) -> tuple:
        length = None if dft_length is None else _scalar(dft_length, "dft_length", node)
        return (_dft(node, x, axis, length, inverse, onesided),)

    return compute


@kernels.register("DFT", since=20, host_inputs=(1, 2))
def dft_20(node: NodeInfo) -> Callable[..., tuple]:
    """DFT 20+: discrete Fourier transform along the ``axis`` input (default -2)."""
    inverse = bool(node.attrs.get("inverse", 0))
    onesided = bool(node.attrs.get("onesided", 0))

    def compute(x: Any, dft_length: Any = None, axis: Any = None) -> tuple:
        length = None if dft_length is None else _scalar(dft_length, "dft_length", node)
        axis_value = -2 if axis is None else _scalar(axis, "axis", node)
        return (_dft(node, x, axis_value, length, inverse, onesided),)

    return compute


# --------------------------------------------------------------------------------------------
# STFT
# --------------------------------------------------------------------------------------------


@kernels.register("STFT", since=17, host_inputs=(1, 3))
def stft(node: NodeInfo) -> Callable[..., tuple]:
    """STFT 17+: windowed DFT of frames ``frame_step`` apart; output [batch, frames, bins, 2]."""
    onesided = bool(node.attrs.get("onesided", 1))

    def compute(signal: Any, frame_step: Any, window: Any = None,
                frame_length: Any = None) -> tuple:
        if signal.ndim != 3 or signal.shape[-1] not in (1, 2):
            raise ValueError(
                f"{node.describe()}: signal must be [batch, length, 1 or 2], got {signal.shape}"
            )
        step = _scalar(frame_step, "frame_step", node)
        if window is not None and window.ndim != 1:
            raise ValueError(f"{node.describe()}: window must be 1-D, got {window.shape}")
        if frame_length is not None:
            length = _scalar(frame_length, "frame_length", node)
            if window is not None and window.shape[0] != length:
                raise ValueError(
                    f"{node.describe()}: window length {window.shape[0]} differs from "
                    f"frame_length {length}"
                )
        else:
            length = signal.shape[1] if window is None else window.shape[0]
        if step <= 0 or length <= 0 or length > signal.shape[1]:
            raise ValueError(
                f"{node.describe()}: need frame_step > 0 and 0 < frame_length <= "
                f"{signal.shape[1]}, got {step} and {length}"
            )
        n_frames = (signal.shape[1] - length) // step + 1
        # the windowed frames (and the spectrum, no larger) are materialized
        node.check_output_size((signal.shape[0], n_frames, length), _complex_of(signal.dtype))
        samples = _to_complex(signal)
        frames = np.lib.stride_tricks.sliding_window_view(samples, length, axis=1)[:, ::step]
        frames = frames[:, :n_frames]
        if window is not None:
            frames = frames * window.astype(frames.real.dtype)
        if onesided and signal.shape[-1] == 1:
            spectrum = np.fft.rfft(frames, axis=-1)
        else:
            spectrum = np.fft.fft(frames, axis=-1)
            if onesided:  # a complex signal keeps the first half, as onnxruntime does
                spectrum = spectrum[..., : length // 2 + 1]
        return (_from_complex(spectrum, signal.dtype),)

    return compute


# --------------------------------------------------------------------------------------------
# MelWeightMatrix
# --------------------------------------------------------------------------------------------


def _mel_weights(num_mel_bins: int, dft_length: int, sample_rate: float, lower_hz: float,
                 upper_hz: float) -> np.ndarray:
    """Return the [dft_length // 2 + 1, num_mel_bins] triangular filter bank (float64)."""
    low_mel = 2595.0 * np.log10(1.0 + lower_hz / 700.0)
    high_mel = 2595.0 * np.log10(1.0 + upper_hz / 700.0)
    mel_step = (high_mel - low_mel) / (num_mel_bins + 2)
    hz = 700.0 * (10.0 ** ((np.arange(num_mel_bins + 2) * mel_step + low_mel) / 2595.0) - 1.0)
    edges = np.floor((dft_length + 1) * hz / sample_rate).astype(np.int64)
    left, center, right = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]
    rows = np.arange(dft_length // 2 + 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where(center == left, 1.0, (rows - left) / (center - left))
        falling = (right - rows) / (right - center)
    in_rise = (rows >= left) & (rows <= center)
    in_fall = (rows >= center) & (rows < right)
    return np.where(in_fall, falling, np.where(in_rise, rising, 0.0))


@kernels.register("MelWeightMatrix", since=17, host_inputs=(0, 1, 2, 3, 4))
def mel_weight_matrix(node: NodeInfo) -> Callable[..., tuple]:
    """MelWeightMatrix 17+: triangular mel filter bank mapping DFT bins to mel bands."""
    dtype = _output_dtype(node)

    def compute(num_mel_bins: Any, dft_length: Any, sample_rate: Any, lower_edge_hertz: Any,
                upper_edge_hertz: Any) -> tuple:
        bins = _scalar(num_mel_bins, "num_mel_bins", node)
        length = _scalar(dft_length, "dft_length", node)
        rate = _scalar(sample_rate, "sample_rate", node)
        lower = float(np.asarray(lower_edge_hertz, dtype=np.float64).reshape(()))
        upper = float(np.asarray(upper_edge_hertz, dtype=np.float64).reshape(()))
        if bins <= 0 or length <= 0 or rate <= 0 or not 0 <= lower < upper:
            raise ValueError(
                f"{node.describe()}: need positive num_mel_bins, dft_length, sample_rate and "
                f"0 <= lower_edge_hertz < upper_edge_hertz"
            )
        if np.floor((length + 1) * upper / rate) >= length // 2 + 1:
            raise ValueError(
                f"{node.describe()}: upper_edge_hertz {upper} is out of range for dft_length "
                f"{length} and sample_rate {rate}"
            )
        node.check_output_size((length // 2 + 1, bins), np.float64)  # computed in double
        return (_mel_weights(bins, length, rate, lower, upper).astype(dtype),)

    return compute


# --------------------------------------------------------------------------------------------
# window functions
# --------------------------------------------------------------------------------------------


def _cosine_window(node: NodeInfo, a0: float, a1: float, a2: float) -> Callable[..., tuple]:
    """Return the compute of ``a0 - a1·cos(2πn/N) + a2·cos(4πn/N)`` with N = size (periodic)
    or size - 1 (symmetric), cast to ``output_datatype``.

    Computed in float64; for integer outputs, values within rounding error of an integer (the
    peak of 1) snap to it before the truncating cast. A symmetric window of size 1 divides by
    zero, which gives NaN as the op's function body does.
    """
    dtype = _output_dtype(node)
    periodic = bool(node.attrs.get("periodic", 1))
    integer_output = dtype.kind in "iu"

    def compute(size: Any) -> tuple:
        count = _scalar(size, "size", node)
        if count < 0:
            raise ValueError(f"{node.describe()}: size must be non-negative, got {count}")
        node.check_output_size((count,), np.float64)  # computed in double
        period = np.float64(count if periodic else count - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            angle = np.arange(count) * (2.0 * np.pi / period)
            window = a0 - a1 * np.cos(angle) + a2 * np.cos(2.0 * angle)
            if integer_output:
                nearest = np.rint(window)
                window = np.where(np.abs(window - nearest) < 1e-9, nearest, window)
            return (window.astype(dtype),)

    return compute


@kernels.register("HannWindow", since=17, host_inputs=(0,))
def hann_window(node: NodeInfo) -> Callable[..., tuple]:
    """HannWindow 17+: ``0.5 - 0.5·cos(2πn/N)``."""
    return _cosine_window(node, 0.5, 0.5, 0.0)


@kernels.register("HammingWindow", since=17, host_inputs=(0,))
def hamming_window(node: NodeInfo) -> Callable[..., tuple]:
    """HammingWindow 17+: ``25/46 - 21/46·cos(2πn/N)``."""
    return _cosine_window(node, 25.0 / 46.0, 21.0 / 46.0, 0.0)


@kernels.register("BlackmanWindow", since=17, host_inputs=(0,))
def blackman_window(node: NodeInfo) -> Callable[..., tuple]:
    """BlackmanWindow 17+: ``0.42 - 0.5·cos(2πn/N) + 0.08·cos(4πn/N)``."""
    return _cosine_window(node, 0.42, 0.5, 0.08)
