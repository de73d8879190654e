"""CLI: the ``nearspace`` command (Typer + Rich).

Owns argument parsing, human and JSON output, and turning errors into one-line
messages with a non-zero exit. Heavy libraries are imported inside commands so that
``nearspace --help`` stays fast.
"""
