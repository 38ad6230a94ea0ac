"""``python -m cairn.cli``: the same as the ``cairn`` console script."""

from cairn.cli.main import app

app(prog_name="cairn")
