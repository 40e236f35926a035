"""Charter: a node of a governed multi-party network."""

__version__ = "0.1.0"
