"""The callers file (GRPC_CALLERS_FILE): who may call the account gRPC API, and with what.

Callers are bank systems, listed as JSON:

    {"callers": {
        "rewards-mall": {"token_sha256": "<64 hex>", "methods": ["read", "redeem"]},
        "core-banking": {"cert_cn": "core-banking.bank.example", "methods": ["read"]},
        "ops-console":  {"token_sm3": ["<new>", "<old>"], "cert_cn": "ops.bank.example",
                         "methods": ["read", "admin"]}}}

A caller presents every credential its entry lists: the bearer token (only its SHA-256 or SM3
digest is stored; a list holds several during a rotation) and/or a client certificate (mutual
TLS) whose subject CN is `cert_cn`. Permissions (METHOD_PERMISSIONS): "read" for the queries,
"redeem" for Redeem, "catalogue" for the customer-facing catalogue methods (ListCatalogue,
RedeemItem, GetCatalogueRedemption: a rewards mall that holds only "catalogue" spends grams at
catalogue prices, never an amount of its own choosing), "enterprise" for the bank app's
methods that link and unlink an employee's account with an enterprise on the employee's consent
and list those links (LinkEnterprise, UnlinkEnterprise, ListEnterpriseLinks; the enterprise's
aggregate, GetEnterpriseAggregate, is "read", and so is a customer's retirement certificate,
GetRetirementCertificate), "admin" for OpenAccount, SetStatus, the
catalogue's item changes and history, and for every other AccountService method (a method
added to the proto without an entry here needs "admin" until classified — fail closed). Calls
that need "admin" are audited whatever their outcome (account.grpc_auth).
grpc.health.v1 and server reflection need no credential.

Pure: parsing, validation and the permission table. The server's check of each call is
account.grpc_auth; `python -m account.cli.grpc_callers` makes tokens and checks a file.
"""

import hashlib
import json
import re
from dataclasses import dataclass

from carbon_common.gm import sm3_digest

SERVICE = "carbon.account.v1.AccountService"
PUBLIC_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
)
PERMISSIONS = ("read", "redeem", "catalogue", "enterprise", "admin")
METHOD_PERMISSIONS = {
    "GetAccount": "read",
    "ListAccounts": "read",
    "GetBalance": "read",
    "ListEntries": "read",
    "GetStatement": "read",
    "GetTotals": "read",
    "Redeem": "redeem",
    "OpenAccount": "admin",
    "SetStatus": "admin",
    # the rewards catalogue (docs/catalogue.md)
    "PutCatalogueItem": "admin",
    "RetireCatalogueItem": "admin",
    "ListCatalogueItemVersions": "admin",
    "ListCatalogue": "catalogue",
    "RedeemItem": "catalogue",
    "GetCatalogueRedemption": "catalogue",
    # enterprise accounts (docs/enterprise.md)
    "LinkEnterprise": "enterprise",
    "UnlinkEnterprise": "enterprise",
    "ListEnterpriseLinks": "enterprise",
    "GetEnterpriseAggregate": "read",
    # retirement certificates (docs/certificate.md §8): a customer's read, like GetBalance
    "GetRetirementCertificate": "read",
}
TOKEN_DIGESTS = {"token_sha256": lambda token: hashlib.sha256(token).digest(), "token_sm3": sm3_digest}
_CALLER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_CALLER_KEYS = {"methods", "cert_cn", *TOKEN_DIGESTS}


def permission_for(full_method: str) -> str | None:
    """None for the public services (health, reflection), else the permission the method needs."""
    service, _, method = full_method.lstrip("/").partition("/")
    if service in PUBLIC_SERVICES:
        return None
    if service == SERVICE and method in METHOD_PERMISSIONS:
        return METHOD_PERMISSIONS[method]
    return "admin"


@dataclass(frozen=True)
class Caller:
    caller_id: str
    methods: frozenset
    token_digests: tuple = ()  # ((kind, digest bytes), …)
    cert_cn: str | None = None


def _digests(caller_id: str, kind: str, value) -> list[tuple[str, bytes]]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise ValueError(f"caller {caller_id}: {kind} must be a hex digest or a non-empty list of them")
    out = []
    for hexdigest in values:
        if not isinstance(hexdigest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", hexdigest):
            raise ValueError(f"caller {caller_id}: {kind} entries must be 64 hex characters")
        out.append((kind, bytes.fromhex(hexdigest)))
    return out


def parse_callers(document: object, mutual_tls: bool) -> dict[str, Caller]:
    """Validates a callers document strictly (an unknown key is a typo, not something to ignore)."""
    if not isinstance(document, dict) or set(document) != {"callers"} or not isinstance(document["callers"], dict):
        raise ValueError('a callers file is {"callers": {"<caller id>": {…}, …}}')
    callers, seen_digests, seen_cns = {}, set(), set()
    for caller_id, entry in document["callers"].items():
        if not _CALLER_ID.match(caller_id):
            raise ValueError(f"caller id {caller_id!r}: lower-case letters, digits, '.', '_', '-', at most 63")
        if not isinstance(entry, dict) or set(entry) - _CALLER_KEYS:
            raise ValueError(f"caller {caller_id}: allowed keys are {sorted(_CALLER_KEYS)}")
        methods = entry.get("methods")
        if not isinstance(methods, list) or not methods or set(methods) - set(PERMISSIONS):
            raise ValueError(f"caller {caller_id}: methods is a non-empty list of {list(PERMISSIONS)}")
        digests = [d for kind in TOKEN_DIGESTS if kind in entry for d in _digests(caller_id, kind, entry[kind])]
        cert_cn = entry.get("cert_cn")
        if cert_cn is not None and (not isinstance(cert_cn, str) or not cert_cn):
            raise ValueError(f"caller {caller_id}: cert_cn must be a non-empty string")
        if not digests and cert_cn is None:
            raise ValueError(f"caller {caller_id}: needs a token digest (token_sha256/token_sm3) or cert_cn")
        if cert_cn is not None and not mutual_tls:
            raise ValueError(f"caller {caller_id}: cert_cn needs mutual TLS (GRPC_TLS_CLIENT_CA_FILE)")
        if seen_digests & set(digests) or (cert_cn is not None and cert_cn in seen_cns):
            raise ValueError(f"caller {caller_id}: shares a token digest or cert_cn with another caller")
        seen_digests |= set(digests)
        seen_cns |= {cert_cn} - {None}
        callers[caller_id] = Caller(caller_id, frozenset(methods), tuple(digests), cert_cn)
    return callers


def load_callers_file(path: str, mutual_tls: bool) -> dict[str, Caller]:
    with open(path, encoding="utf-8") as f:
        try:
            document = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON: {exc}") from None
    return parse_callers(document, mutual_tls)
