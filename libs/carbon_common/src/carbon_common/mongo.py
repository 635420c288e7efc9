"""MongoDB access that runs unchanged on MongoDB (replica set) and FerretDB v1 (SQLite).

FerretDB v1 has no transactions and non-atomic updates; callers build on inserts with unique
keys. Retryable writes are off because FerretDB ignores their metadata.
"""
from urllib.parse import urlparse, urlencode, parse_qsl, urlunparse

from nameko.extensions import DependencyProvider
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError, BulkWriteError

from carbon_common.config import require, setting

_clients = {}


def _with_defaults(uri: str) -> str:
    parts = urlparse(uri)
    query = dict(parse_qsl(parts.query))
    query.setdefault("retryWrites", "false")
    query.setdefault("serverSelectionTimeoutMS", "5000")
    return urlunparse(parts._replace(query=urlencode(query)))


def client(uri: str | None = None) -> MongoClient:
    """One pooled client per URI per process (pymongo clients are thread/greenlet safe)."""
    uri = _with_defaults(uri or require("MONGO_URI"))
    if uri not in _clients:
        _clients[uri] = MongoClient(uri, tz_aware=True)
    return _clients[uri]


def connect_database(default_name: str, uri: str | None = None, name: str | None = None):
    return client(uri)[name or setting("MONGO_DATABASE", default_name)]


def is_duplicate_key(exc: Exception) -> bool:
    """True for E11000. FerretDB v1 does not say which index was hit: to tell "already applied"
    (same _id) from "lost a race" (another unique key), look the _id up afterwards."""
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        return all(e.get("code") == 11000 for e in exc.details.get("writeErrors", []))
    return getattr(exc, "code", None) == 11000


class MongoDatabase(DependencyProvider):
    """Injects the service's own pymongo Database (MONGO_URI / MONGO_DATABASE)."""

    def __init__(self, default_name: str):
        self.default_name = default_name

    def setup(self):
        config = self.container.config
        uri = config.get("MONGO_URI") or require("MONGO_URI")
        name = config.get("MONGO_DATABASE") or setting("MONGO_DATABASE", self.default_name)
        self.database = client(uri)[name]

    def get_dependency(self, worker_ctx):
        return self.database
