"""Code shared by several workflows of the monorepo (declared as `shared` in their workflow.toml)."""

from .text import normalise_words

__all__ = ["normalise_words"]
