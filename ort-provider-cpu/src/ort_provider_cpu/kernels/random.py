"""CPU kernels: random generators: RandomUniform(Like), RandomNormal(Like), Multinomial, Bernoulli."""

from __future__ import annotations

from ort.kernels import KernelTable

kernels = KernelTable()
