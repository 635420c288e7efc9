"""Configuration from the environment, read once at start-up.

A missing required value stops the process with a message naming the variable
(Online Boutique's mustMapEnv), so a mis-deployed pod fails loudly at start, not at first use.
"""
import os
import sys


class MissingSetting(SystemExit):
    def __init__(self, name):
        super().__init__(f"missing required environment variable {name}")
        self.name = name


def require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        print(f"fatal: missing required environment variable {name}", file=sys.stderr)
        raise MissingSetting(name)
    return value


def setting(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def int_setting(name: str, default: int) -> int:
    raw = setting(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name} must be an integer, got {raw!r}")
