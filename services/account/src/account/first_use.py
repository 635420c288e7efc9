"""A dependency built when a worker first uses it, not while nameko injects it, over the
service's ledger (the container's LedgerProvider, found without importing it: the catalogue and
enterprise providers sit below account.dependencies)."""


class OnFirstUse:
    """Building the catalogue or the enterprise parts reads the database; an error raised during
    nameko's injection kills the whole service container (every entrypoint, e.g. a timer firing
    while MongoDB restarts), while an error inside the worker is only that worker's, retried by
    its entrypoint. So providers hand out this proxy and the build happens on first attribute use."""

    def __init__(self, build):
        self._build = build

    def __getattr__(self, name):
        return getattr(self._build(), name)


def container_ledger(container):
    """The ledger of the container's LedgerProvider (the dependency that says `provides_ledger`)."""
    return next(d for d in container.dependencies if getattr(d, "provides_ledger", False)).ledger
