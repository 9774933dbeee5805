"""Subcommands of the ``supersmall`` CLI, one module each (see :mod:`supersmall.cli`)."""
