"""Suggester: a knowledge base and retrieval-assisted reply suggester for CX agents."""

__version__ = "0.1.0"
