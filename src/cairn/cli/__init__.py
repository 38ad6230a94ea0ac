"""The ``cairn`` command line (``cairn.cli.main:app``)."""
