"""The application: the composition root, the ``liaison`` command, the demo and logging set-up.

It stands above the adapters: the only code that imports the core (``router``),
the volets (``mappings``) and the adapters (the other ``channels`` packages),
picks adapters from the URLs of the configuration and hands the core its
ports. No adapter imports it (an import-linter contract in ``pyproject.toml``).
"""
