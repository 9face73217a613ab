"""A complete third-party execution provider for ort (see the provider author guide)."""

from .plugin import ExampleExecutionProvider

__all__ = ["ExampleExecutionProvider"]
