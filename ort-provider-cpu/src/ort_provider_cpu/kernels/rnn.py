"""CPU kernels: Recurrent ops: RNN, LSTM, GRU."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
