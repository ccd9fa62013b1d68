"""The command line, run as a user runs it: `python -m app ...` in a subprocess."""
