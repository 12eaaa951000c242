"""``python -m autoloop``: the ``autoloop`` command."""

from autoloop.cli import app

app(prog_name="autoloop")
