"""`python -m carbon_dev.bridge_demo --grpc 127.0.0.1:50051 --registry http://127.0.0.1:8200 --out DIR`

The exchange act of `make run`, through the platform's own interfaces:

1. customers redeem through the account gRPC API: the first five customers 5,000 g each for a
   metro pass, and the households of the energy-saving programme (carbon_dev.ingest_demo) their
   whole balance for a green-electricity bill credit. Request keys are fixed (per customer and
   day, per household), so a re-run spends nothing twice;
2. the redeemed grams settle into the bank pool; bridge passes (nameko RPC
   `exchange_bridge.run_batch`) take the reductions behind them into groups per methodology,
   version and vintage, and a group of a tonne or more becomes a signed batch the registry issues
   as whole tonnes, the remainder carried to the group's next batch;
3. of the household group's issued batch, one unit is transferred to another participant of the
   registry (the demo green fund, registered through the registry's admin API as the exchange's
   operator would) and the other units are retired on behalf of the programme's households
   (RPCs `transfer_units`, `retire_units`, idempotent by request key);
4. one household's retirement certificate (RPC `certificate`) is written to DIR — with its PDF
   when the bridge offers RPC `certificate_pdf` — and checked with
   tools/certificate-verifier/verify.js against the keys the registry publishes.

Environment: AMQP_URI, PSEUDONYM_KEY (the households' account pseudonyms, as ingest computes
them), REGISTRY_ADMIN_TOKEN (to register the green fund). Exit 1 when the exchange step did not
happen (no batch of two units or more, a unit operation refused, no certificate).
"""

import argparse
import base64
import datetime
import json
import pathlib
import shutil
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # nameko's import; noise here

import grpc
import requests
from nameko.exceptions import MethodNotFound, RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc
from carbon_common import gm
from carbon_common.config import require
from carbon_dev import ingest_demo
from carbon_dev.processes import ROOT

GRAMS = 5_000
GRAMS_PER_UNIT = 1_000_000
GREEN_FUND = ("demo-green-fund", "Demo green fund")
BENEFICIARY = "households of the Demo bank energy-saving programme"
REASON = "voluntary retirement on behalf of the programme's households"
HOUSEHOLD_METHODOLOGY = "household_electricity"
VERIFIER = ROOT / "tools" / "certificate-verifier"


def shown(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def grams(n: int) -> str:
    return f"{n:,} g"


def redeem_for_demo_customers(stub, pseudonym_key: bytes, count: int) -> tuple[int, int]:
    """The first `count` demo customers who can afford it redeem GRAMS for a metro pass, once a
    day (request key per account and day). -> (redeemed now, redeemed earlier today)."""
    day = datetime.datetime.now(ingest_demo.CST).strftime("%Y%m%d")
    now = before = 0
    for number in ingest_demo.customers(50):
        if now + before == count:
            break
        ref = pb.AccountRef(owner_pid=gm.pseudonymize(pseudonym_key, number))
        try:
            balance = stub.GetBalance(ref, timeout=10)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                continue
            raise
        key = f"demo-reward-{day}-{balance.account_id}"
        if balance.balance_grams < GRAMS:
            continue
        response = stub.Redeem(
            pb.RedeemRequest(account=ref, grams=GRAMS, request_key=key, reward_id="demo-metro-pass"), timeout=10
        )
        before, now = (before + 1, now) if response.replayed else (before, now + 1)
    return now, before


def redeem_for_households(stub, pseudonym_key: bytes, count: int) -> tuple[int, int, int]:
    """Each programme household redeems its whole balance once (request key per account).
    -> (households that redeemed now, households that had redeemed before, grams redeemed now)."""
    now = before = total = 0
    for number in ingest_demo.households(count):
        ref = pb.AccountRef(owner_pid=gm.pseudonymize(pseudonym_key, number))
        try:
            balance = stub.GetBalance(ref, timeout=10)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:  # not credited (yet): nothing to redeem
                continue
            raise
        key = f"demo-green-bill-{balance.account_id}"
        if balance.balance_grams <= 0:
            before += 1
            continue
        response = stub.Redeem(
            pb.RedeemRequest(account=ref, grams=balance.balance_grams, request_key=key, reward_id="demo-green-bill"),
            timeout=10,
        )
        if response.replayed:
            before += 1
        else:
            now, total = now + 1, total + balance.balance_grams
    return now, before, total


def wait_for_pool(stub, expected: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        pool = stub.GetTotals(pb.GetTotalsRequest(), timeout=10).pool_grams
        if pool >= expected or time.monotonic() > deadline:
            return pool
        time.sleep(0.3)


def passes(rpc, settle_seconds: float = 3.0, deadline_seconds: float = 90.0) -> tuple[int, list, int]:
    """Bridge passes until one finds nothing new after the pool had time to settle (the outbox
    relay moves a redemption's grams to the pool every 0.5 s). -> (passes, issued, waiting)."""
    settle, deadline = time.monotonic() + settle_seconds, time.monotonic() + deadline_seconds
    count, issued, waiting = 0, [], 0
    while True:
        result = rpc.exchange_bridge.run_batch()
        count += 1
        issued += result["registered"]
        waiting = result["failed"]
        quiet = not result["registered"] and not result["formed"] and not result["intake"].get("reductions")
        if (quiet and time.monotonic() > settle) or time.monotonic() > deadline:
            return count, issued, waiting
        time.sleep(0.5)


def issued_batches(rpc, head_batch_id: str, limit: int = 20) -> list[dict]:
    """The group's batches from its head back along `carried_from` (each batch states the
    group's previous issued batch), newest first, with their stored states."""
    out, batch_id = [], head_batch_id
    while batch_id and len(out) < limit:
        status = rpc.exchange_bridge.batch_status(batch_id)
        if status is None:
            break
        out.append(status)
        batch_id = status["batch"].get("carried_from", "")
    return out


def short(batch_id: str) -> str:
    return f"{batch_id[:12]}…"


def describe_groups(rpc) -> tuple[list[str], dict | None]:
    """One line per group, and the household group's issued batch with the most units."""
    lines, chosen = [], None
    for group in rpc.exchange_bridge.overview()["groups"]:
        methodology, version, vintage = group["group"].split(":")
        name = f"{methodology} v{version} {vintage}"
        batches = issued_batches(rpc, group["head_batch_id"]) if group["head_batch_id"] else []
        issued = [b for b in batches if "issued" in b["states"]]
        for status in reversed(issued):
            doc, issue = status["batch"], status["states"]["issued"]
            lines.append(
                f"{name}: batch {short(status['batch_id'])} of {len(status['reduction_ids'])} reductions, "
                f"{grams(doc['quantity_grams'])} + {grams(doc['carried_in_grams'])} carried in → issued "
                f"{issue['units']} unit(s) {issue['serial'] or '(none)'}, {grams(issue['carried_out_grams'])} carried "
                f"to the group's next batch"
            )
            if methodology == HOUSEHOLD_METHODOLOGY and (chosen is None or issue["units"] > chosen["units"]):
                chosen = {"batch_id": status["batch_id"], "units": issue["units"], "status": status}
        head = batches[0] if batches else None
        if head is not None and "issued" not in head["states"]:
            lines.append(f"{name}: batch {short(head['batch_id'])} {head['state']}")
        if group["pending_grams"] or not batches:
            lines.append(
                f"{name}: {grams(group['pending_grams'])} queued + {grams(group['carried_in_grams'])} carried: "
                f"waiting for a tonne"
            )
    return lines, chosen


def move_units(rpc, batch: dict) -> list[str]:
    """One unit to the green fund, the others retired; request keys fixed per batch."""
    batch_id, units = batch["batch_id"], batch["units"]
    moved = rpc.exchange_bridge.transfer_units(batch_id, 1, GREEN_FUND[0], f"demo-transfer-{batch_id[:40]}")
    retired = rpc.exchange_bridge.retire_units(batch_id, units - 1, BENEFICIARY, REASON, f"demo-retire-{batch_id[:40]}")
    return [
        f"transferred {moved['units']} unit {moved['serial']} to {moved['to_holder']} (registry record {moved['record_id']})",
        f'retired {retired["units"]} unit(s) {retired["serial"]} for "{BENEFICIARY}" (registry record {retired["record_id"]})',
    ]


def certificate_of_a_household(rpc, pseudonym_key: bytes, count: int, batch: dict) -> tuple[str, str, dict] | None:
    """The first programme household with reductions in the batch: (number, pid, certificate)."""
    reduction_ids = batch["status"]["reduction_ids"]
    for number in ingest_demo.households(count):
        pid = gm.pseudonymize(pseudonym_key, number)
        certificate = rpc.exchange_bridge.certificate(pid, reduction_ids)
        if certificate.get("batches"):
            return number, pid, certificate
    return None


def with_pdf(rpc, pid: str, reduction_ids: list[str]) -> dict | None:
    """RPC `certificate_pdf` (the certificate and a PDF of it for people), or None where the
    bridge has no such RPC."""
    try:
        return rpc.exchange_bridge.certificate_pdf(pid, reduction_ids)
    except MethodNotFound:
        return None
    except RemoteError as error:
        if error.exc_type == "MethodNotFound":
            return None
        raise


def verify(path: pathlib.Path, bank_key: str, registry_key: str) -> tuple[str, list[str]]:
    """(the command, what verify.js printed) — its output as it is."""
    command = [
        "node",
        str(VERIFIER.relative_to(ROOT) / "verify.js"),
        "--bank-key",
        bank_key,
        "--registry-key",
        registry_key,
        str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
    ]
    if shutil.which("node") is None:
        return " ".join(command), ["(node is not installed here: run the command where it is)"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return " ".join(command), [
        f"exit {result.returncode}: {lines[0]}" if lines else f"exit {result.returncode}"
    ] + lines[1:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carbon_dev.bridge_demo", description=__doc__.splitlines()[0])
    parser.add_argument("--grpc", default="127.0.0.1:50051")
    parser.add_argument("--registry", default="http://127.0.0.1:8200")
    parser.add_argument("--customers", type=int, default=5)
    parser.add_argument("--households", type=int, default=ingest_demo.HOUSEHOLDS)
    parser.add_argument("--participant", default="demo-bank", help="the bank's participant id at the registry")
    parser.add_argument("--key-id", default="k1", help="the bank's key id at the registry")
    parser.add_argument("--out", default=str(ROOT / ".data" / "certificates"), help="where the certificate goes")
    args = parser.parse_args(argv)
    pseudonym_key = bytes.fromhex(require("PSEUDONYM_KEY"))
    registry = args.registry.rstrip("/")
    with grpc.insecure_channel(args.grpc) as channel:
        stub = pb_grpc.AccountServiceStub(channel)
        pool_before = stub.GetTotals(pb.GetTotalsRequest(), timeout=10).pool_grams
        customers_now, customers_before = redeem_for_demo_customers(stub, pseudonym_key, args.customers)
        if customers_now or not customers_before:
            print(
                f"  {customers_now} customers redeem {grams(GRAMS)} each for a metro pass"
                + (f" ({customers_before} more did earlier today)" if customers_before else "")
            )
        else:
            print(f"  {customers_before} customers redeemed {grams(GRAMS)} each for a metro pass earlier today")
        now, before, total = redeem_for_households(stub, pseudonym_key, args.households)
        if now or not before:
            print(
                f"  {now} households of the energy-saving programme redeem their whole balance, {grams(total)} in all, "
                f"for a green-electricity bill credit" + (f" ({before} did on an earlier run)" if before else "")
            )
        else:
            print(
                f"  the {before} households of the energy-saving programme redeemed their whole balance for a "
                "green-electricity bill credit on an earlier run"
            )
        # the outbox relay settles each redemption into the pool within a second: the first pass
        # waits for all of them, so the programme's reductions form one batch
        wait_for_pool(stub, pool_before + customers_now * GRAMS + total)
        with ClusterRpcProxy({"AMQP_URI": require("AMQP_URI")}, timeout=120) as rpc:
            count, issued, waiting = passes(rpc)
            pool = stub.GetTotals(pb.GetTotalsRequest(), timeout=10).pool_grams
            print(
                f"  the bank pool holds {grams(pool)} taken back from redemptions; {count} bridge passes issued "
                f"{len(issued)} new batch(es), {waiting} waiting. Groups (methodology, version, vintage):"
            )
            lines, chosen = describe_groups(rpc)
            for line in lines:
                print(f"    {line}")
            if chosen is None or chosen["units"] < 2:
                print(f"  no {HOUSEHOLD_METHODOLOGY} batch of 2 units or more: nothing to transfer and retire")
                return 1
            admin = {"Authorization": f"Bearer {require('REGISTRY_ADMIN_TOKEN')}"}
            body = {"participant_id": GREEN_FUND[0], "name": GREEN_FUND[1]}
            requests.post(f"{registry}/v1/admin/participants", json=body, headers=admin, timeout=10).raise_for_status()
            print(f"  units of batch {short(chosen['batch_id'])} ({chosen['units']} units):")
            for line in move_units(rpc, chosen):
                print(f"    {line}")
            found = certificate_of_a_household(rpc, pseudonym_key, args.households, chosen)
            pdf = with_pdf(rpc, found[1], chosen["status"]["reduction_ids"]) if found else None
    if found is None:
        print("  no household of the programme has reductions in that batch: no certificate")
        return 1
    number, pid, certificate = found
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"retirement-certificate-{pid[:16]}.json"
    if pdf is not None:  # the JSON the PDF renders
        certificate = pdf["certificate"]
        path.with_suffix(".pdf").write_bytes(base64.b64decode(pdf["pdf_base64"]))
    path.write_text(json.dumps(certificate, indent=2, ensure_ascii=False) + "\n")
    bank_key = requests.get(f"{registry}/v1/participants/{args.participant}/keys/{args.key_id}", timeout=10).json()
    registry_key = requests.get(f"{registry}/v1/public-key", timeout=10).json()
    units = sum(
        r["record"]["units"] if "record" in r else r.get("units", 0)
        for b in certificate["batches"]
        for r in b["retirements"]
    )
    print(
        f"  retirement certificate ({certificate['format']}) of household {number} (pid {pid[:16]}…): "
        f"{grams(certificate['total_grams'])} of its reductions in {len(certificate['batches'])} batch(es) "
        f"whose retirements total {units} unit(s)"
    )
    print(f"    written to {shown(path)}")
    if pdf is not None:
        print(
            f"    and as a PDF for people (RPC certificate_pdf): {shown(path.with_suffix('.pdf'))}, "
            f"certificate digest {pdf['digest']}"
        )
    command, said = verify(path, bank_key["public_key"], registry_key["public_key"])
    print("  verify it independently (the bank's key and the registry's, as the registry publishes them):")
    print(f"    {command}")
    for line in said:
        print(f"      {line}")
    print(f"    or open {(VERIFIER / 'index.html').relative_to(ROOT)} in a browser, paste both keys, drop the file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
