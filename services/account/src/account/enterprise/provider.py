"""One set of enterprise parts per process, next to the process's ledger
(account.dependencies.Ledger), as account.catalogue.provider does for the catalogue.

Settings: ENTERPRISE_MIN_GROUP (5): fewer distinct contributing employees than this and a group
(enterprise, month, scenario) is withheld; ENTERPRISE_PSEUDONYM_KEY (optional, 64+ hex
characters): the key of the per-enterprise pseudonyms, else one generated once and kept in
enterprise_meta (the same for every process of the platform)."""

import threading
from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from carbon_common.config import int_setting, setting

from account.enterprise.enterprise import Enterprises
from account.enterprise.links import MIN_GROUP
from account.enterprise.readmodel import ReadModel
from account.enterprise.scope import ScopeGuard
from account.enterprise.store import EnterpriseStore
from account.first_use import OnFirstUse, container_ledger

_lock = threading.Lock()


@dataclass
class EnterpriseParts:
    enterprises: Enterprises
    readmodel: ReadModel
    scope: ScopeGuard


def _key(config) -> bytes | None:
    text = setting("ENTERPRISE_PSEUDONYM_KEY", "", config)
    if not text:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 32:
        raise SystemExit("ENTERPRISE_PSEUDONYM_KEY must be at least 64 hex characters (32 bytes)")
    return key


def build_enterprise(ledger, config=None) -> EnterpriseParts:
    min_group = int_setting("ENTERPRISE_MIN_GROUP", MIN_GROUP, config)
    if min_group < 1:
        raise SystemExit("ENTERPRISE_MIN_GROUP must be 1 or more")
    store = EnterpriseStore(ledger.repo.db)
    store.ensure_indexes()
    enterprises = Enterprises(ledger.ops, store, min_group=min_group, key=_key(config))
    return EnterpriseParts(enterprises, ReadModel(enterprises), ScopeGuard(ledger.ops))


def enterprise_of(ledger, config=None) -> EnterpriseParts:
    """The process's enterprise parts for this ledger (built once)."""
    found = getattr(ledger, "_enterprise", None)
    if found is None:
        with _lock:
            found = getattr(ledger, "_enterprise", None)
            if found is None:
                found = build_enterprise(ledger, config)
                ledger._enterprise = found
    return found


class EnterpriseProvider(DependencyProvider):
    """nameko: the enterprise parts of the service's LedgerProvider ledger (built on first use)."""

    def get_dependency(self, worker_ctx):
        return OnFirstUse(lambda: enterprise_of(container_ledger(self.container), self.container.config))
