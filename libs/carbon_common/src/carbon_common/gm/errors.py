"""Errors raised by carbon_common.gm."""


class DecryptionError(ValueError):
    """Ciphertext was tampered with, truncated, or decrypted under the wrong key.

    Deliberately carries no detail about *which* check failed (no padding or MAC
    oracle); callers map it to one generic 4xx / rejection.
    """
