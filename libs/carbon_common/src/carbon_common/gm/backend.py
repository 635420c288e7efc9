"""Which implementation runs the primitives.

`CARBON_GM_BACKEND` = `fast` (default: cryptography + gmssl-pyx) or `reference`
(gmssl 3.2.2, pure Python, ~20-1000x slower). If the fast bindings cannot be imported
(e.g. no wheel for the platform) we fall back to the reference and say so in the log:
results are identical, only slower. `active.name` tells which one is in use.
"""

import importlib
import logging
from types import ModuleType

from carbon_common.config import setting

from . import _reference

_log = logging.getLogger(__name__)
BACKENDS = ("fast", "reference")


def load(choice: str) -> ModuleType:
    if choice not in BACKENDS:
        raise ValueError(f"CARBON_GM_BACKEND must be one of {BACKENDS}, not {choice!r}")
    if choice == "reference":
        return _reference
    try:
        return importlib.import_module(f"{__package__}._fast")
    except ImportError as exc:
        _log.warning("gm fast backend unavailable (%s); using the gmssl reference", exc)
        return _reference


active: ModuleType = load(setting("CARBON_GM_BACKEND", "fast"))
