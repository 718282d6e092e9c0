"""The `soundstorm` command (main.py; `python -m soundstorm.apps.cli`): thin subcommands over the library."""
