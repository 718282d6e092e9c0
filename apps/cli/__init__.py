"""The `soundstorm` command (main.py; `python -m apps.cli`): thin subcommands over the library."""
