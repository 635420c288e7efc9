"""GM crypto throughput: the chosen fast backend vs the gmssl 3.2.2 reference.

Prints ops/s (and MB/s for bulk ops) per backend and the ratio fast/reference.
Each measurement runs for BUDGET seconds, so the whole run stays well under 60 s.
Run: .venv/bin/python tests/bench/bench_crypto.py
"""

import os
import sys
import time

from carbon_common import gm
from carbon_common.gm import _reference, backend

BUDGET = float(os.environ.get("BENCH_CRYPTO_SECONDS", "1.2"))
BULK = os.urandom(4096)
KEY16 = os.urandom(16)


def rate(operation) -> float:
    operation()  # warm-up (caches, lazy imports)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < BUDGET:
        operation()
        count += 1
    return count / elapsed


def workloads():
    private_hex, public_hex = gm.generate_sm2_keypair()
    message = b"POST\n/v1/records\n1732500000\nnonce\n" + b"x" * 512
    signature = gm.sm2_sign(private_hex, message)
    blob = gm.sm4_cbc_hmac_encrypt(KEY16, BULK)
    envelope = gm.envelope_encrypt(public_hex, BULK)
    return [  # (name, operation, bytes per op or 0)
        ("sm2_sign", lambda: gm.sm2_sign(private_hex, message), 0),
        ("sm2_verify", lambda: gm.sm2_verify(public_hex, message, signature), 0),
        ("sm3 4KiB", lambda: gm.sm3_digest(BULK), len(BULK)),
        ("pseudonymize", lambda: gm.pseudonymize(KEY16, "6222020200112233"), 0),
        ("sm4+hmac enc 4KiB", lambda: gm.sm4_cbc_hmac_encrypt(KEY16, BULK), len(BULK)),
        ("sm4+hmac dec 4KiB", lambda: gm.sm4_cbc_hmac_decrypt(KEY16, blob), len(BULK)),
        ("envelope dec 4KiB", lambda: gm.envelope_decrypt(private_hex, envelope), len(BULK)),
    ]


def measure(impl) -> dict:
    backend.active = impl
    results = {}
    for name, operation, size in workloads():
        results[name] = (rate(operation), size)
        print(f"  {impl.name:<38} {name:<20} {results[name][0]:>10.1f} ops/s", flush=True)
    return results


def tongsuopy_sm2() -> dict:
    """The measured-but-not-chosen alternative (see docs/adr/0003-crypto-backend.md)."""
    try:
        from tongsuopy.crypto import hashes
        from tongsuopy.crypto.asymciphers import ec
    except ImportError:
        return {}
    key = ec.generate_private_key(ec.SM2())
    algorithm = ec.ECDSA(hashes.SM3())
    message = b"x" * 550
    signature = key.sign(message, algorithm)
    numbers = key.public_key().public_numbers()

    def verify():
        public = ec.EllipticCurvePublicNumbers(numbers.x, numbers.y, ec.SM2()).public_key()
        public.verify(signature, message, algorithm)

    return {"sm2_sign": rate(lambda: key.sign(message, algorithm)), "sm2_verify": rate(verify)}


def main() -> int:
    started = time.perf_counter()
    fast = backend.load("fast")
    print(f"[1/3] fast backend: {fast.name}", flush=True)
    fast_results = measure(fast)
    print(f"[2/3] reference backend: {_reference.name}", flush=True)
    ref_results = measure(_reference)
    print("[3/3] tongsuopy 1.0.1 SM2 (alternative, not used)", flush=True)
    tongsuo = tongsuopy_sm2()
    print(
        f"\n{'operation':<20} {'fast ops/s':>12} {'gmssl ops/s':>12} {'fast/gmssl':>11}"
        f" {'fast MB/s':>10} {'tongsuopy':>10}"
    )
    for name, (fast_rate, size) in fast_results.items():
        ref_rate = ref_results[name][0]
        mbps = f"{fast_rate * size / 1e6:10.1f}" if size else f"{'':>10}"
        alt = f"{tongsuo[name]:10.0f}" if name in tongsuo else f"{'':>10}"
        print(f"{name:<20} {fast_rate:12.1f} {ref_rate:12.1f} {fast_rate / ref_rate:10.1f}x {mbps} {alt}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
