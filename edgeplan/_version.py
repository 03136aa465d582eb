"""The package version (one place: the package face and the plan files read it)."""

__version__ = "0.1.0"
