"""Typer command-line interface: thin shells over the Python API. Nothing imports from here."""
