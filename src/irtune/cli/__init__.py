"""irtune's command line: Typer commands over the Python API (irtune.api)."""
