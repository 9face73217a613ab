"""The version of ort-core; every distribution of the project moves in lockstep with it."""

__version__ = "0.1.0"
