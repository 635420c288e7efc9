"""TLS for the account gRPC server, with certificates re-read when their files change.

GRPC_TLS_CERT_FILE + GRPC_TLS_KEY_FILE: the server's certificate chain and private key (PEM).
GRPC_TLS_CLIENT_CA_FILE (optional): CA bundle (PEM); when set, every client must present a
certificate that chains to it (mutual TLS) — the handshake fails otherwise, before any RPC.

The credentials are `grpc.dynamic_ssl_server_credentials`: gRPC asks `fetch()` at each new
handshake; it stats the files and, when a file's (mtime, size, inode) changed, re-reads them
and hands gRPC the new configuration. A Kubernetes Secret update (kubelet swaps the `..data`
symlink, so every file changes at once) therefore rotates the certificate for new connections
without a restart; established connections keep the old one until they reconnect. A new pair
that does not match (a key for another certificate, a half-written file) is refused with a log
line and the previous pair keeps serving until the files are consistent again.
"""

import logging
import os
import threading
from dataclasses import dataclass
from typing import Mapping

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from carbon_common.config import setting

log = logging.getLogger("account.grpc_tls")


class FileWatch:
    """Tells whether any of `paths` changed since the last call (stat only, no read)."""

    def __init__(self, *paths: str):
        self.paths = paths
        self.seen = self.signature()

    def signature(self) -> tuple:
        stamps = []
        for path in self.paths:
            try:
                st = os.stat(path)
                stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def changed(self) -> bool:
        now = self.signature()
        if now == self.seen:
            return False
        self.seen = now
        return True


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@dataclass(frozen=True)
class CertBundle:
    chain: bytes
    key: bytes
    client_ca: bytes | None
    subject: str
    not_after: str

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(self.key, self.chain)], root_certificates=self.client_ca)


def load_bundle(cert_file: str, key_file: str, client_ca_file: str | None) -> CertBundle:
    """Reads and checks the files: the key must belong to the first certificate of the chain."""
    chain, key = _read(cert_file), _read(key_file)
    client_ca = _read(client_ca_file) if client_ca_file else None
    try:
        leaf = x509.load_pem_x509_certificate(chain)
        private = serialization.load_pem_private_key(key, password=None)
        if client_ca is not None:
            x509.load_pem_x509_certificates(client_ca)
    except ValueError as exc:
        raise ValueError(f"unreadable PEM in the gRPC TLS files: {exc}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(serialization.Encoding.DER, spki) != private.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise ValueError(f"{key_file} is not the private key of the certificate in {cert_file}")
    return CertBundle(chain, key, client_ca, leaf.subject.rfc4514_string(), leaf.not_valid_after_utc.isoformat())


class ReloadingCredentials:
    """Server credentials whose certificate, key and client CA follow the files."""

    def __init__(self, cert_file: str, key_file: str, client_ca_file: str | None = None):
        self.files = (cert_file, key_file, client_ca_file)
        self.watch = FileWatch(*(p for p in self.files if p))
        self.lock = threading.Lock()
        self.bundle = load_bundle(*self.files)  # a bad start-up configuration stops the process
        self.reloads = 0

    @property
    def mutual(self) -> bool:
        return self.files[2] is not None

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's certificate_configuration_fetcher: None keeps the current configuration."""
        with self.lock:
            if not self.watch.changed():
                return None
            try:
                bundle = load_bundle(*self.files)
            except Exception as exc:  # noqa: BLE001 - gRPC core calls this: it must answer, never raise
                log.error(
                    "gRPC TLS files changed but cannot be used; still serving the previous certificate",
                    extra={"error": str(exc)},
                )
                self.watch.seen = None  # look again at the next handshake
                return None
            if bundle == self.bundle:
                return None
            self.bundle, self.reloads = bundle, self.reloads + 1
            log.info("gRPC TLS certificate reloaded", extra={"subject": bundle.subject, "not_after": bundle.not_after})
            return bundle.configuration()

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self.bundle.configuration(), self.fetch, require_client_authentication=self.mutual
        )


def credentials_from_env(config: Mapping | None = None) -> ReloadingCredentials | None:
    """None when no TLS is configured; SystemExit when it is configured by halves or unreadable.
    A value in `config` wins over the environment (carbon_common.config)."""
    cert, key = setting("GRPC_TLS_CERT_FILE", "", config), setting("GRPC_TLS_KEY_FILE", "", config)
    client_ca = setting("GRPC_TLS_CLIENT_CA_FILE", "", config) or None
    if not cert and not key:
        if client_ca:
            raise SystemExit("GRPC_TLS_CLIENT_CA_FILE needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE")
        return None
    if not (cert and key):
        raise SystemExit("set both GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE (or neither)")
    try:
        return ReloadingCredentials(cert, key, client_ca)
    except Exception as exc:  # noqa: BLE001 - unreadable, unsupported key type …: stop with the reason
        raise SystemExit(f"gRPC TLS: {type(exc).__name__}: {exc}")
