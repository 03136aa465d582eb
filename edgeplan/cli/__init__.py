"""The ``edgeplan`` command line: :mod:`.main` (subcommands) and :mod:`.demo`."""

from edgeplan.cli.main import main

__all__ = ["main"]
