"""The ``liaison`` command, one module per verb group; :func:`channels.app.cli.main.main` is the entry point."""
