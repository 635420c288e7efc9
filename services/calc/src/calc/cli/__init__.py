"""Command-line tools of the calc service, run as `python -m calc.cli.<name>`."""
