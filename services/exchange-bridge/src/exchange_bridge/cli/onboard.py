"""`python -m exchange_bridge.cli.onboard`: register the bank at the exchange registry.

Registers the bank's participant and its SM2 public key through the registry's admin API
(docs/registry-api.md §1), idempotently: a participant or key already registered as given is
fine (exit 0); one registered differently is an error naming what differs (exit 1). With the
private key too, it proves the registry accepts the key: one signed read (the bank's holdings).

Settings (flags override the environment):
  REGISTRY_URL (http://127.0.0.1:8200), REGISTRY_ADMIN_TOKEN (required),
  BRIDGE_PARTICIPANT (required), BRIDGE_PARTICIPANT_NAME (default: the participant id),
  BRIDGE_KEY_ID (k1), BRIDGE_SM2_PUBLIC_KEY (required), BRIDGE_SM2_PRIVATE_KEY (optional).
Exit status: 0 onboarded (or already), 1 refused, 2 unusable settings or no registry.
"""

import argparse
import os
import sys
import time

import requests

from carbon_common import gm
from exchange_bridge.registry_client import RegistryClient, RegistryError


class Refused(Exception):
    pass


def _post(url: str, token: str, path: str, body: dict) -> tuple[int, dict]:
    response = requests.post(url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    try:
        answer = response.json()
    except ValueError:
        answer = {"code": "http_error", "message": response.text[:200]}
    if response.status_code >= 300:
        raise Refused(f"{path}: {response.status_code} {answer.get('code')}: {answer.get('message')}")
    return response.status_code, answer


def wait_for(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def onboard(
    url: str, token: str, participant: str, name: str, key_id: str, public_key: str, private_key: str = ""
) -> list[str]:
    """-> lines saying what was done. Raises Refused."""
    url = url.rstrip("/")
    done = []
    status, _ = _post(url, token, "/v1/admin/participants", {"participant_id": participant, "name": name})
    done.append(f"participant {participant}: {'registered' if status == 201 else 'already registered'}")
    body = {"key_id": key_id, "public_key": public_key.lower()}
    status, key = _post(url, token, f"/v1/admin/participants/{participant}/keys", body)
    if key.get("revoked"):
        raise Refused(f"key {key_id} of {participant} is revoked: choose a new BRIDGE_KEY_ID")
    done.append(f"key {key_id}: {'added' if status == 201 else 'already registered'}")
    if private_key:
        try:
            RegistryClient(url, participant, key_id, private_key, attempts=3).holdings()
        except RegistryError as error:
            raise Refused(f"a request signed with key {key_id} was not accepted: {error}")
        done.append(f"a request signed with key {key_id} is accepted")
    return done


def main(argv=None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m exchange_bridge.cli.onboard", description=__doc__.splitlines()[0])
    parser.add_argument("--registry-url", default=env("REGISTRY_URL", "http://127.0.0.1:8200"))
    parser.add_argument("--participant", default=env("BRIDGE_PARTICIPANT", ""))
    parser.add_argument("--name", default=env("BRIDGE_PARTICIPANT_NAME", ""))
    parser.add_argument("--key-id", default=env("BRIDGE_KEY_ID", "k1"))
    parser.add_argument("--public-key", default=env("BRIDGE_SM2_PUBLIC_KEY", ""))
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the registry's /health")
    args = parser.parse_args(argv)
    token, private_key = env("REGISTRY_ADMIN_TOKEN", ""), env("BRIDGE_SM2_PRIVATE_KEY", "")
    missing = [
        n
        for n, v in (
            ("REGISTRY_ADMIN_TOKEN", token),
            ("BRIDGE_PARTICIPANT", args.participant),
            ("BRIDGE_SM2_PUBLIC_KEY", args.public_key),
        )
        if not v
    ]
    if missing:
        print(f"missing setting(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    if private_key and gm.public_key_of(private_key).lower() != args.public_key.lower():
        print("BRIDGE_SM2_PUBLIC_KEY is not the public key of BRIDGE_SM2_PRIVATE_KEY", file=sys.stderr)
        return 2
    if not wait_for(args.registry_url.rstrip("/"), args.wait):
        print(f"no registry answers at {args.registry_url}/health", file=sys.stderr)
        return 2
    try:
        lines = onboard(
            args.registry_url,
            token,
            args.participant,
            args.name or args.participant,
            args.key_id,
            args.public_key,
            private_key,
        )
    except (Refused, requests.RequestException) as error:
        print(f"onboarding refused: {error}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
