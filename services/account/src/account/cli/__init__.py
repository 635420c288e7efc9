"""Command-line tools of the account service, run as `python -m account.cli.<name>`."""
