"""Settings of the ingest service, read once at start-up from the environment.

A missing secret stops the process naming it. `create_app(config)` may override any field
(tests): keys of `config` are the environment variable names.
"""

from dataclasses import dataclass

from carbon_common.config import int_setting, require, setting

SECRETS = ("PSEUDONYM_KEY", "PLATFORM_SM2_PRIVATE_KEY", "PLATFORM_SM2_PUBLIC_KEY", "CONTACT_SM4_KEY", "ADMIN_TOKEN")
REQUIRED = ("AMQP_URI", "MONGO_URI") + SECRETS


@dataclass(frozen=True)
class Settings:
    amqp_uri: str
    mongo_uri: str
    mongo_database: str
    pseudonym_key: bytes
    platform_private_key: str
    platform_public_key: str
    contact_key: bytes
    admin_token: str
    max_body_bytes: int
    max_batch: int
    max_backlog: int = 0  # ingest.backpressure; load_settings reads INGEST_MAX_BACKLOG
    backlog_poll_seconds: float = 1.0


def _hex_bytes(name: str, value: str, minimum: int, exact: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise SystemExit(f"fatal: {name} must be hex") from None
    if len(raw) < minimum or (exact and len(raw) != exact):
        raise SystemExit(f"fatal: {name} must be {exact or f'at least {minimum}'} bytes of hex")
    return raw


def load_settings(overrides: dict | None = None) -> Settings:
    """From the environment (carbon_common.config); `overrides` win over it (tests)."""
    config = overrides or {}

    def get(name, default=None):
        return require(name, config) if default is None else setting(name, default, config)

    return Settings(
        amqp_uri=get("AMQP_URI"),
        mongo_uri=get("MONGO_URI"),
        mongo_database=get("MONGO_DATABASE", "carbon_ingest"),
        pseudonym_key=_hex_bytes("PSEUDONYM_KEY", get("PSEUDONYM_KEY"), 16),
        platform_private_key=get("PLATFORM_SM2_PRIVATE_KEY"),
        platform_public_key=get("PLATFORM_SM2_PUBLIC_KEY"),
        contact_key=_hex_bytes("CONTACT_SM4_KEY", get("CONTACT_SM4_KEY"), 16, exact=16),
        admin_token=get("ADMIN_TOKEN"),
        max_body_bytes=int_setting("INGEST_MAX_BODY_BYTES", 1024 * 1024, config),
        max_batch=int_setting("INGEST_MAX_BATCH", 500, config),
        # 0: never shed load (ingest.backpressure)
        max_backlog=int_setting("INGEST_MAX_BACKLOG", 20000, config),
        backlog_poll_seconds=float(setting("INGEST_BACKLOG_POLL_SECONDS", "1", config)),
    )
