"""MongoDB access that runs unchanged on MongoDB (replica set) and FerretDB v1 (SQLite).

FerretDB v1 has no transactions and non-atomic updates; callers build on inserts with unique
keys. Retryable writes are off because FerretDB ignores their metadata.
"""

import json
from urllib.parse import urlparse, urlencode, parse_qsl, urlunparse

import orjson
from nameko.extensions import DependencyProvider
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError, BulkWriteError

from carbon_common.config import require, setting

DUPLICATE_KEY = 11000  # the server's error code for a taken unique key (E11000)
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
        return all(e.get("code") == DUPLICATE_KEY for e in exc.details.get("writeErrors", []))
    return getattr(exc, "code", None) == DUPLICATE_KEY


class MongoDatabase(DependencyProvider):
    """Injects the service's own pymongo Database (MONGO_URI / MONGO_DATABASE)."""

    def __init__(self, default_name: str):
        self.default_name = default_name

    def setup(self):
        config = self.container.config
        self.database = client(require("MONGO_URI", config))[setting("MONGO_DATABASE", self.default_name, config)]

    def get_dependency(self, worker_ctx):
        return self.database


def insert_new(collection, docs: list[dict]) -> set[int]:
    """One unordered insert_many; -> indexes of the docs whose unique key was already taken.
    Any other write error raises (nothing may be assumed stored)."""
    if not docs:
        return set()
    try:
        collection.insert_many(docs, ordered=False)
        return set()
    except BulkWriteError as exc:
        if not is_duplicate_key(exc):
            raise
        return {e["index"] for e in exc.details.get("writeErrors", [])}


def insert_or_get(collection, doc: dict, also_unique: tuple[str, ...] = ()) -> tuple[dict, bool]:
    """Insert-only collections: (stored document, inserted now). On a duplicate key the document
    stored first wins; it is read back by each field of `also_unique` (the collection's other
    unique keys), then by _id, since FerretDB v1 does not say which index was hit."""
    if not insert_new(collection, [doc]):
        return doc, True
    for field in (*also_unique, "_id"):
        stored = collection.find_one({field: doc[field]})
        if stored is not None:
            return stored, False
    raise LookupError(f"duplicate {doc['_id']} not found by {', '.join((*also_unique, '_id'))}")


def create_query_index(collection, keys, name: str | None = None) -> bool:
    """A non-unique index that only serves queries: created where the server reads it.

    FerretDB v1 pushes only `_id` filters down to SQLite; its other indexes are never read, yet
    every insert maintains them (measured: ledger entries insert 1.32x slower with two of them).
    So on FerretDB it is skipped, unless CARBON_QUERY_INDEXES=always; `never` skips it anywhere.
    Unique indexes are guards, not query aids: create those with `create_index` everywhere.
    -> whether it was created."""
    policy = setting("CARBON_QUERY_INDEXES", "auto")
    if policy not in ("auto", "always", "never"):
        raise ValueError(f"CARBON_QUERY_INDEXES must be auto, always or never, not {policy!r}")
    if policy == "never" or (policy == "auto" and is_ferretdb(collection.database.client)):
        return False
    collection.create_index(keys, **({"name": name} if name else {}))  # None: the server's default name
    return True


def is_ferretdb(mongo_client) -> bool:
    return "ferretdbVersion" in mongo_client.server_info()


def find_by_ids(collection, ids, projection=None) -> dict:
    """_id -> document, with one `$in` query (pushed down to the _id index on FerretDB too)."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    return {d["_id"]: d for d in collection.find({"_id": {"$in": ids}}, projection)}


def insert_or_get_many(collection, docs: list[dict]) -> list[tuple[dict, bool]]:
    """Insert-only collections: [(stored document, inserted now)] in the order of `docs`.
    A duplicate _id returns the document stored first (it wins).

    Reads before it writes: FerretDB inserts a batch in one transaction per 100 documents and,
    when one of them is a duplicate, inserts that chunk again document by document, a commit
    each (measured: 22% of FerretDB's CPU under load went there, for ~3% duplicate dedup
    claims). A `$in` that finds nothing costs a few µs per id."""
    stored = find_by_ids(collection, [d["_id"] for d in docs])
    fresh = [i for i, d in enumerate(docs) if d["_id"] not in stored]
    taken = insert_new(collection, [docs[i] for i in fresh])  # a duplicate now: written meanwhile
    if taken:
        stored.update(find_by_ids(collection, [docs[fresh[j]]["_id"] for j in taken]))
    inserted = {fresh[j] for j in range(len(fresh)) if j not in taken}
    out = []
    for i, doc in enumerate(docs):
        if i in inserted:
            out.append((doc, True))
        elif doc["_id"] in stored:
            out.append((stored[doc["_id"]], False))
        else:  # another unique key than _id was hit: the caller's schema must say which
            raise LookupError(f"duplicate {doc['_id']} not found by _id")
    return out


def json_text(value) -> str:
    """JSON text of a value stored as one string field (read back by key, never hashed: any valid
    JSON of it will do). orjson is ~10x faster than json.dumps; json.dumps takes what orjson
    refuses (e.g. integers over 64 bits)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def from_json_body(doc: dict | None, body_key: str, copied: tuple[str, ...], loads=orjson.loads) -> dict | None:
    """A value stored as one JSON string (`body_key`) beside top-level copies of some of its
    fields (`copied`, those the store filters on) -> the value, the copies winning. A document
    without the string (written in an older form) is returned as it is."""
    if doc is None or body_key not in doc:
        return doc
    value = loads(doc[body_key])
    value.update({k: doc[k] for k in copied if k in doc})
    return value
