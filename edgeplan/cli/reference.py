"""The command-line reference page (``docs/cli.md``), made from the parser itself.

``python -m edgeplan.cli.reference docs/cli.md`` writes it; ``tests/test_docs.py`` checks that the page in the
repository equals what the parser says, so the reference cannot drift from the commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: Terminal width the help is wrapped at (argparse reads ``COLUMNS``).
WIDTH = 110


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def cli_reference() -> str:
    """The Markdown of the reference: the top-level help, then every command's ``--help``."""
    from edgeplan.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["# Command line", "",
             "Every command, as `edgeplan COMMAND --help` prints it (this page is made from the parser: "
             "`python -m edgeplan.cli.reference docs/cli.md`). Errors are one line on stderr with exit code 2; "
             "a solve or validation that finds no plan or a broken one exits with 1; Ctrl-C exits with 130.",
             "", "```text", _help(parser), "```"]
    for name, command in sub.choices.items():
        parts += ["", f"## `edgeplan {name}`", "", "```text", _help(command), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":  # pragma: no cover - the maintainers' command
    Path(sys.argv[1] if len(sys.argv) > 1 else "docs/cli.md").write_text(cli_reference())
