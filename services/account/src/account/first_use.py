"""A dependency built when a worker first uses it, not while nameko injects it."""


class OnFirstUse:
    """Building the catalogue or the enterprise parts reads the database; an error raised during
    nameko's injection kills the whole service container (every entrypoint, e.g. a timer firing
    while MongoDB restarts), while an error inside the worker is only that worker's, retried by
    its entrypoint. So providers hand out this proxy and the build happens on first attribute use."""

    def __init__(self, build):
        self._build = build

    def __getattr__(self, name):
        return getattr(self._build(), name)
