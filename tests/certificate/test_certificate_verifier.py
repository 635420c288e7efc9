"""tools/certificate-verifier: the CLI and the page judge retirement certificates alike.

Certificates (carbon-retirement-certificate/2: the registry's records as it signs them) are
produced with the platform's code, the registry's record builders included
(certificate_fixtures.py), then judged by the
verifier, which shares none of it: VALID as made, INVALID with the right reason (check code and
batch/leaf) once tampered with. The page runs in headless Chromium from file:// (it reads the
certificate and the keys from its URL fragment) and its verdict is read from the DOM Chromium
dumps when the page has loaded; the verification runs synchronously while the page loads.

A certificate spanning a rotation of the bank's key and of the registry's is VALID only with
every key that signed in it, and the report names the key that verified each signature.

The doc's test vector (docs/certificate.md) is recomputed three ways: by the fixture code that
made it, by an independent Python computation (json.dumps, OpenSSL's SM3 via hashlib, gmssl's
SM2), and by the verifier's JavaScript.
"""

import base64
import hashlib
import json
import re
import subprocess
import tempfile
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest
from certificate_fixtures import (
    ROTATION_A,
    ROTATION_B,
    Keys,
    certificate_digest,
    doc_vector,
    doc_vector_rows,
    key_fingerprint,
    new_keys,
    resign_issuance,
    resign_retirement,
    rotation_certificate,
    sample_certificate,
    serial,
)

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "certificate-verifier"
INDEX = TOOL / "index.html"
VENDOR = TOOL / "vendor" / "sm-crypto-0.5.8"
EXAMPLE = TOOL / "examples" / "certificate-v2-test-vector.json"
DOC = (ROOT / "docs" / "certificate.md").read_text()

A, B, C = "batch-2026-metro-0001", "batch-2026-metro-0002", "batch-2027-bike-0001"


# ---- running the verifier ----------------------------------------------------------------------


def as_bytes(certificate) -> bytes:
    if isinstance(certificate, bytes):
        return certificate
    return json.dumps(certificate, ensure_ascii=False, indent=1).encode("utf-8")


def key_options(option: str, keys) -> list[str]:
    """`option` once per key: `keys` is one key or a list of them."""
    return [arg for key in ([keys] if isinstance(keys, str) else keys) for arg in (option, key)]


def run_cli(node, certificate, bank, registry, *options: str) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(as_bytes(certificate))
        f.flush()
        keys = key_options("--bank-key", bank) + key_options("--registry-key", registry)
        args = [node, str(TOOL / "verify.js"), *keys, *options, f.name]
        return subprocess.run(args, capture_output=True, text=True, timeout=120)


def cli_verdict(node, certificate, bank, registry) -> tuple[str, set]:
    result = run_cli(node, certificate, bank, registry, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == (0 if report["verdict"] == "VALID" else 1), result.stderr
    return report["verdict"], {(f["code"], f["batch"], f["leaf"]) for f in report["failures"]}


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.verdict = None
        self.failures = []
        self.check_keys = []  # (code, data-key) of every row of the checklist, in order
        self.signers = []  # data-key of each batch's "signed by the bank" line, in order
        self.fingerprints = []  # the trusted keys' fingerprints in the summary, in order
        self._stack = []  # (tag, what) of open elements whose text is collected
        self.verdict_text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and attrs.get("class") == "check":
            self.check_keys.append((attrs.get("data-code"), attrs.get("data-key")))
        elif tag == "p" and attrs.get("class") == "signer":
            self.signers.append(attrs.get("data-key"))
        if attrs.get("id") == "verdict":
            self.verdict = attrs.get("data-verdict")
            self._stack.append((tag, "verdict"))
        elif tag == "li" and attrs.get("class") == "failure":
            self.failures.append(
                {
                    "code": attrs.get("data-code"),
                    "batch": attrs.get("data-batch"),
                    "leaf": attrs.get("data-leaf"),
                    "text": "",
                }
            )
            self._stack.append((tag, "failure"))
        elif tag == "div" and attrs.get("class") == "code fingerprint":
            self.fingerprints.append("")
            self._stack.append((tag, "fingerprint"))
        elif self._stack:
            self._stack.append((tag, None))

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if any(what == "verdict" for _, what in self._stack):
            self.verdict_text += data
        if any(what == "failure" for _, what in self._stack):
            self.failures[-1]["text"] += data
        if any(what == "fingerprint" for _, what in self._stack):
            self.fingerprints[-1] += data


def page_dom(chromium, url: str) -> _Dom:
    """The DOM once the page has loaded (Chromium's --dump-dom), within a deadline."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium,
                "--headless=new",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--disable-extensions",
                f"--user-data-dir={profile}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0 and "<html" in result.stdout, result.stderr[-2000:]
    dom = _Dom()
    dom.feed(result.stdout)
    return dom


def page_url(certificate, bank, registry) -> str:
    """`bank`, `registry`: one key, or a list sent as the URL form `<hex>,<hex>…`."""
    cert = base64.urlsafe_b64encode(as_bytes(certificate)).decode("ascii").rstrip("=")
    bank, registry = (k if isinstance(k, str) else ",".join(k) for k in (bank, registry))
    return INDEX.as_uri() + "#" + urllib.parse.urlencode({"cert": cert, "bank": bank, "registry": registry})


def page_verdict(chromium, certificate, bank, registry) -> tuple[str, set]:
    dom = page_dom(chromium, page_url(certificate, bank, registry))
    assert dom.verdict in ("VALID", "INVALID"), f"no verdict in the page: {dom.verdict} {dom.verdict_text!r}"
    return dom.verdict, {(f["code"], f["batch"], f["leaf"]) for f in dom.failures}


def verdict(runner: str, request, certificate, bank, registry) -> tuple[str, set]:
    if runner == "cli":
        return cli_verdict(request.getfixturevalue("node"), certificate, bank, registry)
    return page_verdict(request.getfixturevalue("chromium"), certificate, bank, registry)


RUNNERS = [pytest.param("cli", id="cli"), pytest.param("page", id="page", marks=pytest.mark.chromium)]


# ---- a valid certificate and tampered copies ------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    return sample_certificate()


def retotal(cert: dict) -> dict:
    cert["total_grams"] = sum(le["leaf"]["grams"] for entry in cert["batches"] for le in entry["leaves"])
    return cert


def flip(hex_text: str) -> str:
    return ("1" if hex_text[0] != "1" else "2") + hex_text[1:]


def grams_changed(sample):
    cert = sample.copy()
    cert["batches"][0]["leaves"][1]["leaf"]["grams"] += 1
    return retotal(cert), {("merkle_proof", A, "red-a-003")}


def other_owner_leaf(sample):
    cert = sample.copy()
    cert["batches"][0]["leaves"][0] = sample.other_owner_leaf  # its proof is valid: only the owner differs
    return retotal(cert), {("leaf_owner", A, "red-a-002")}


def leaf_of_other_batch(sample):
    cert = sample.copy()
    moved = cert["batches"][2]["leaves"].pop(0)  # bike-share 2.1, vintage 2027
    cert["batches"][0]["leaves"][2] = moved
    return retotal(cert), {(code, A, "red-c-001") for code in ("leaf_methodology", "leaf_vintage", "merkle_proof")}


def wrong_bank_key(sample):
    return sample.copy(), {("bank_signature", batch, None) for batch in (A, B, C)}


def wrong_registry_key(sample):
    return sample.copy(), {("issuance_signature", b, None) for b in (A, B, C)} | {
        ("retirement_signature", b, None) for b in (A, B, C)
    }


def retirement_outside_issuance(sample):
    cert = sample.copy()
    record = cert["batches"][0]["retirements"][0]["record"]  # batch A issued units 1-2
    record.update(start=3, end=3, serial=serial("metro-ride", "1.0.0", 2026, 3, 3))
    resign_retirement(cert, sample.keys, 0, 0)  # signed by the registry: the range itself is the fault
    return cert, {("retirement_range", A, None)}


def retirement_of_another_batch(sample):
    cert = sample.copy()
    # batch B's first retirement (unit 3), signed by the registry, shown under batch A
    cert["batches"][0]["retirements"].append(cert["batches"][1]["retirements"][0])
    return cert, {("retirement_batch", A, None), ("retirement_range", A, None)}


def beneficiary_edited(sample):
    cert = sample.copy()
    cert["batches"][2]["retirements"][0]["record"]["beneficiary"] = "李四"  # not re-signed
    return cert, {("retirement_signature", C, None)}


def issuance_of_another_tree(sample):
    cert = sample.copy()
    record = cert["batches"][0]["issuance"]["record"]
    record["merkle_root"] = cert["batches"][2]["batch"]["merkle_root"]
    resign_issuance(cert, sample.keys, 0)  # the registry issued for another tree than the bank signed
    return cert, {("issuance_match", A, None)}


def issuance_of_another_batch(sample):
    cert = sample.copy()
    cert["batches"][0]["issuance"] = cert["batches"][2]["issuance"]  # batch C's, signed by the registry
    return cert, {("issuance_batch", A, None), ("issuance_match", A, None), ("issuance_units", A, None)}


def zero_unit_issuance(sample):
    cert = sample.copy()
    record = cert["batches"][0]["issuance"]["record"]
    record.update(units=0, start=None, end=None, serial="", produced=[])  # as the registry writes 0 units
    resign_issuance(cert, sample.keys, 0)
    return cert, {("structure", A, None)}


def unknown_record_format(sample):
    cert = sample.copy()
    cert["batches"][2]["retirements"][0]["record"]["format"] = "carbon-registry-record/2"
    resign_retirement(cert, sample.keys, 2, 0)
    return cert, {("record_format", C, None)}


def retirement_range_edited(sample):
    cert = sample.copy()
    cert["batches"][1]["retirements"][1]["record"].update(start=4, end=9, units=6)  # batch B issued 3-4; not re-signed
    return cert, {("retirement_signature", B, None), ("retirement_range", B, None)}


def total_changed(sample):
    cert = sample.copy()
    cert["total_grams"] += 1_000_000
    return cert, {("total_grams", None, None)}


def proof_hash_flipped(sample):
    cert = sample.copy()
    step = cert["batches"][1]["leaves"][0]["proof"][0]
    step["hash"] = flip(step["hash"])
    return cert, {("merkle_proof", B, "red-b-002")}


def reduction_twice(sample):
    cert = sample.copy()
    cert["batches"][2]["leaves"].append(cert["batches"][2]["leaves"][1])
    return retotal(cert), {("duplicate_reduction", C, "red-c-004")}


def float_in_batch(sample):
    cert = sample.copy()
    cert["batches"][0]["batch"]["quantity_grams"] = float(cert["batches"][0]["batch"]["quantity_grams"])  # "2191286.0"
    # batch A cannot be read, so neither can the total: both are reported
    return cert, {("structure", A, None), ("total_grams", None, None)}


def unknown_format(sample):
    cert = sample.copy()
    cert["format"] = "carbon-retirement-certificate/3"
    return cert, {("format", None, None)}


def withdrawn_format(sample):
    cert = sample.copy()
    cert["format"] = "carbon-retirement-certificate/1"
    return cert, {("format", None, None)}


TAMPERED = [
    grams_changed,
    other_owner_leaf,
    leaf_of_other_batch,
    wrong_bank_key,
    wrong_registry_key,
    retirement_outside_issuance,
    retirement_of_another_batch,
    retirement_range_edited,
    beneficiary_edited,
    issuance_of_another_tree,
    issuance_of_another_batch,
    zero_unit_issuance,
    unknown_record_format,
    total_changed,
    proof_hash_flipped,
    reduction_twice,
    float_in_batch,
    unknown_format,
    withdrawn_format,
]


@pytest.fixture(scope="module")
def stranger() -> Keys:
    return new_keys()


def keys_for(case, sample, stranger) -> tuple[str, str]:
    bank = stranger.bank_public if case is wrong_bank_key else sample.keys.bank_public
    registry = stranger.registry_public if case is wrong_registry_key else sample.keys.registry_public
    return bank, registry


@pytest.mark.parametrize("runner", RUNNERS)
def test_valid_certificate(runner, request, sample):
    cert = sample.certificate
    assert [len(e["leaves"]) for e in cert["batches"]] == [3, 1, 3]
    assert [e["batch"]["record_count"] for e in cert["batches"]] == [5, 3, 7]
    assert cert["batches"][1]["batch"]["attempt"] == 2  # a re-formed batch is read as signed
    assert verdict(runner, request, cert, sample.keys.bank_public, sample.keys.registry_public) == ("VALID", set())


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("case", TAMPERED, ids=[c.__name__ for c in TAMPERED])
def test_tampered_certificate(runner, case, request, sample, stranger):
    cert, expected = case(sample)
    assert verdict(runner, request, cert, *keys_for(case, sample, stranger)) == ("INVALID", expected)


# ---- certificates across key rotations ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rotation():
    return rotation_certificate()


def every_key(rotation) -> tuple[list[str], list[str]]:
    """(bank keys, registry keys), old and new: what an auditor of the certificate's period gives."""
    return [rotation.old.bank_public, rotation.new.bank_public], [
        rotation.old.registry_public,
        rotation.new.registry_public,
    ]


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_certificate_across_rotations_is_valid_with_every_key(runner, request, rotation):
    banks, registries = every_key(rotation)
    assert verdict(runner, request, rotation.certificate, banks, registries) == ("VALID", set())
    # the order the keys are given in is not the order they signed in
    assert verdict(runner, request, rotation.certificate, banks[::-1], registries[::-1]) == ("VALID", set())


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_certificate_across_rotations_needs_the_old_keys_too(runner, request, rotation):
    _, registries = every_key(rotation)
    only_new_bank = verdict(runner, request, rotation.certificate, rotation.new.bank_public, registries)
    assert only_new_bank == ("INVALID", {("bank_signature", ROTATION_A, None)})
    banks, _ = every_key(rotation)
    only_new_registry = verdict(runner, request, rotation.certificate, banks, rotation.new.registry_public)
    assert only_new_registry == (
        "INVALID",
        {("issuance_signature", ROTATION_A, None), ("retirement_signature", ROTATION_A, None)}
        | {("issuance_signature", ROTATION_B, None)},
    )


def test_the_cli_report_names_the_key_of_each_signature(node, rotation):
    banks, registries = every_key(rotation)
    old_bank, new_bank, old_registry, new_registry = (key_fingerprint(k) for k in banks + registries)
    result = run_cli(node, rotation.certificate, banks, registries, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["verdict"] == "VALID", result.stdout + result.stderr
    assert [k["fingerprint"] for k in report["keys"]["bank_keys"]] == [old_bank, new_bank]
    assert [k["fingerprint"] for k in report["keys"]["registry_keys"]] == [old_registry, new_registry]
    assert report["keys"]["bank"]["fingerprint"] == old_bank  # the first given: what one-key readers read
    a, b = report["batches"]
    assert (a["batch_id"], a["bank_key"], b["batch_id"], b["bank_key"]) == (ROTATION_A, old_bank, ROTATION_B, new_bank)
    assert [a["issuance"]["registry_key"], b["issuance"]["registry_key"]] == [old_registry, old_registry]
    assert [r["registry_key"] for r in a["retirements"] + b["retirements"]] == [old_registry, new_registry]
    signatures = [(c["code"], c["batch"], c["key"]) for c in report["checks"] if c["code"].endswith("_signature")]
    assert signatures == [
        ("bank_signature", ROTATION_A, old_bank),
        ("issuance_signature", ROTATION_A, old_registry),
        ("retirement_signature", ROTATION_A, old_registry),
        ("bank_signature", ROTATION_B, new_bank),
        ("issuance_signature", ROTATION_B, old_registry),
        ("retirement_signature", ROTATION_B, new_registry),
    ]
    assert all(
        new_bank in c["message"] for c in report["checks"] if c["code"] == "bank_signature" and c["batch"] == ROTATION_B
    )

    text = run_cli(node, rotation.certificate, banks, registries)
    assert text.returncode == 0, text.stdout + text.stderr
    for fingerprint in (old_bank, new_bank):
        assert f"  trusted bank key fingerprint (SM3):     {fingerprint}\n" in text.stdout
    for fingerprint in (old_registry, new_registry):
        assert f"  trusted registry key fingerprint (SM3): {fingerprint}\n" in text.stdout
    assert f"    bank key {old_bank} signed the batch" in text.stdout
    assert f"    bank key {new_bank} signed the batch" in text.stdout
    assert (
        text.stdout.index(old_bank + " signed")
        < text.stdout.index(ROTATION_B)
        < text.stdout.index(new_bank + " signed")
    )
    assert f"record retire:bank-a:retire-1, registry key {new_registry}" in text.stdout


def test_the_cli_failure_lines_say_how_many_keys_were_tried(node, rotation, stranger):
    _, registries = every_key(rotation)
    one = run_cli(node, rotation.certificate, rotation.new.bank_public, registries)
    assert one.returncode == 1
    # with one trusted key, the line is what it always was
    assert (
        f"  [step 2 bank_signature] batch {ROTATION_A}: the bank's signature over canonical_json(batch) does not verify "
        "with the trusted bank key (another key signed it, or the batch was changed)\n"
    ) in one.stdout
    two = run_cli(node, rotation.certificate, [rotation.new.bank_public, stranger.bank_public], registries)
    assert two.returncode == 1
    assert (
        f"[step 2 bank_signature] batch {ROTATION_A}: the bank's signature over canonical_json(batch) does not verify "
        "with any of the 2 trusted bank keys (another key signed it, or the batch was changed)\n" in two.stdout
    )


@pytest.mark.chromium
def test_the_page_names_the_key_of_each_signature(chromium, rotation):
    banks, registries = every_key(rotation)
    old_bank, new_bank, old_registry, new_registry = (key_fingerprint(k) for k in banks + registries)
    # the bank's keys in the URL form <hex>,<hex>; the registry's one per line, as typed into the field
    dom = page_dom(chromium, page_url(rotation.certificate, banks, "\n".join(registries)))
    assert (dom.verdict, dom.failures) == ("VALID", [])
    assert dom.fingerprints == [old_bank, new_bank, old_registry, new_registry]
    assert dom.signers == [old_bank, new_bank]
    signatures = [(code, key) for code, key in dom.check_keys if code.endswith("_signature")]
    assert signatures == [
        ("bank_signature", old_bank),
        ("issuance_signature", old_registry),
        ("retirement_signature", old_registry),
        ("bank_signature", new_bank),
        ("issuance_signature", old_registry),
        ("retirement_signature", new_registry),
    ]
    assert all(key is None for code, key in dom.check_keys if not code.endswith("_signature"))


def test_an_unusable_key_among_several_is_a_usage_error(node, rotation):
    banks, registries = every_key(rotation)
    short = run_cli(node, rotation.certificate, [banks[0], banks[1][:-2]], registries)
    assert short.returncode == 2 and short.stdout == "", short.stdout
    assert f"--bank-key #2 ({banks[1][:12]}…) must be 128 hex characters" in short.stderr
    off_curve = registries[1][:-1] + flip(registries[1][-1])
    bad = run_cli(node, rotation.certificate, banks, [registries[0], off_curve, registries[1]])
    assert (
        bad.returncode == 2 and f"--registry-key #2 ({off_curve[:12]}…) is not a point of the SM2 curve" in bad.stderr
    )


@pytest.mark.chromium
def test_the_page_refuses_an_unusable_key_among_several(chromium, rotation):
    banks, registries = every_key(rotation)
    dom = page_dom(chromium, page_url(rotation.certificate, [banks[0], "04abc", banks[1]], registries))
    assert dom.verdict == "ERROR" and "the bank key #2 (04abc) must be 128 hex characters" in dom.verdict_text


def test_key_lists_split_on_commas_and_whitespace(node, rotation):
    k1, k2 = rotation.old.bank_public, "04" + rotation.new.bank_public.upper()
    cases = [
        k1,
        f"{k1},{k2}",
        f" {k1}\n{k2}\n",
        f"{k1}, {k2}",
        f"{k1}\t{k2}",
        f"{k1[:64]}\n{k1[64:]}",  # one key pasted across two lines is still one key
        "",
    ]
    probe = (
        "const path = require('path'); const dir = process.argv[1]; const v = path.join(dir, 'vendor', 'sm-crypto-0.5.8');"
        "const api = require(path.join(dir, 'certificate.js'))(require(path.join(v, 'sm2.js')), require(path.join(v, 'sm3.js')));"
        "process.stdout.write(JSON.stringify(JSON.parse(process.argv[2]).map((t) => api.splitKeys(t))));"
    )
    result = subprocess.run(
        [node, "-e", probe, str(TOOL), json.dumps(cases)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[k1], [k1, k2], [k1, k2], [k1, k2], [k1, k2], [k1], []]


# ---- what the CLI prints and returns ----------------------------------------------------------------


def test_cli_says_why(node, sample):
    ok = run_cli(node, sample.certificate, sample.keys.bank_public, "04" + sample.keys.registry_public.upper())
    assert ok.returncode == 0 and ok.stdout.startswith("VALID: carbon-retirement-certificate/2"), ok.stdout + ok.stderr
    assert "7 reduction(s) across 3 batch(es); 5 unit(s) retired" in ok.stdout
    assert "深圳市民 张三 🌱" in ok.stdout
    assert f"certificate digest (SM3 of its canonical JSON): {certificate_digest(sample.certificate)}" in ok.stdout
    assert "batch batch-2026-metro-0002 (attempt 2)" in ok.stdout
    assert "retired 1 unit(s) CN-PCA-METRO-RIDE-V1.0.0-2026-000000003-000000003" in ok.stdout
    assert f"trusted bank key fingerprint (SM3):     {key_fingerprint(sample.keys.bank_public)}" in ok.stdout
    assert f"trusted registry key fingerprint (SM3): {key_fingerprint(sample.keys.registry_public)}" in ok.stdout

    cert, _ = grams_changed(sample)
    bad = run_cli(node, cert, sample.keys.bank_public, sample.keys.registry_public)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0] == "INVALID: 1 check(s) failed"
    assert re.search(
        r"\[step 3 merkle_proof\] batch batch-2026-metro-0001, leaf red-a-003: leaf hash \w+… with its proof gives root",
        bad.stdout,
    )


def test_cli_usage_errors(node, sample):
    keys = sample.keys
    short_key = run_cli(node, sample.certificate, keys.bank_public[:-2], keys.registry_public)
    assert short_key.returncode == 2 and "--bank-key must be 128 hex characters" in short_key.stderr
    off_curve = run_cli(
        node, sample.certificate, keys.bank_public, keys.registry_public[:-1] + flip(keys.registry_public[-1])
    )
    assert off_curve.returncode == 2 and "--registry-key is not a point of the SM2 curve" in off_curve.stderr
    missing = subprocess.run(
        [
            node,
            str(TOOL / "verify.js"),
            "--bank-key",
            keys.bank_public,
            "--registry-key",
            keys.registry_public,
            "/nonexistent.json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "cannot read /nonexistent.json" in missing.stderr


@pytest.mark.parametrize(
    "text, reason",
    [
        (b'{"format": "carbon-retirement-certificate/1", "format": "x"}', 'duplicate key "format"'),
        (b"[1, 2", "unexpected end of the text"),
        (b'{"a": "\\ud800"}', "lone surrogate"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_cli_unreadable_certificate(node, sample, text, reason):
    result = run_cli(node, text, sample.keys.bank_public, sample.keys.registry_public)
    assert result.returncode == 1 and "[step 1 json]" in result.stdout and reason in result.stdout, result.stdout


# ---- the page itself --------------------------------------------------------------------------------


def test_page_is_one_offline_file_with_the_user_path():
    page = INDEX.read_text()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "connect-src" not in csp  # nothing may be fetched
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", page, re.I)  # nothing loaded from elsewhere
    for element in (
        'id="bank-key"',
        'id="registry-key"',
        'id="drop"',
        'type="file" id="file"',
        'id="certificate"',
        'id="verify"',
    ):
        assert element in page


@pytest.mark.chromium
def test_page_without_a_certificate_waits(chromium):
    dom = page_dom(chromium, INDEX.as_uri())
    assert (dom.verdict, dom.failures) == ("NONE", [])


@pytest.mark.chromium
def test_page_refuses_a_malformed_key(chromium, sample):
    dom = page_dom(chromium, page_url(sample.certificate, "04abc", sample.keys.registry_public))
    assert dom.verdict == "ERROR" and "the bank key must be 128 hex characters" in dom.verdict_text


@pytest.mark.chromium
def test_page_on_the_doc_test_vector(chromium):
    keys = doc_table()
    verdict_and_failures = page_verdict(
        chromium, EXAMPLE.read_bytes(), keys["bank public key"], keys["registry public key"]
    )
    assert verdict_and_failures == ("VALID", set())


def _scripts(page: str) -> dict:
    return dict(re.findall(r'<script id="([^"]+)">(.*?)</script>', page, re.S))


def test_page_embeds_the_vendored_bundles_and_the_module(node):
    scripts = _scripts(INDEX.read_text())
    sums = dict(line.split()[::-1] for line in (VENDOR / "SHA256SUMS").read_text().splitlines())
    for name in ("sm2.js", "sm3.js"):
        embedded = scripts["sm-crypto-" + name[:-3]].encode("utf-8")
        assert hashlib.sha256(embedded).hexdigest() == sums[name]
        assert embedded == (VENDOR / name).read_bytes()
    assert scripts["certificate-js"] == (TOOL / "certificate.js").read_text()
    check = subprocess.run([node, str(TOOL / "assemble.js"), "--check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_vendored_bundles_are_the_published_sm_crypto_0_5_8(tmp_path):
    try:
        packed = subprocess.run(
            ["npm", "pack", "--silent", "sm-crypto@0.5.8"], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    except (FileNotFoundError, subprocess.TimeoutExpired) as e:
        pytest.skip(
            f"the npm registry cannot be asked for sm-crypto@0.5.8 here ({e}); the page's bytes are still checked against SHA256SUMS"
        )
    if packed.returncode != 0:
        pytest.skip(
            f"the npm registry cannot be asked for sm-crypto@0.5.8 here (npm pack: {packed.stderr.strip()[-300:]}); "
            "the page's bytes are still checked against SHA256SUMS"
        )
    subprocess.run(["tar", "-xzf", "sm-crypto-0.5.8.tgz"], cwd=tmp_path, check=True, timeout=60)
    scripts = _scripts(INDEX.read_text())
    for name in ("sm2.js", "sm3.js"):
        assert scripts["sm-crypto-" + name[:-3]].encode("utf-8") == (tmp_path / "package" / "dist" / name).read_bytes()


# ---- canonical JSON, hashes and the doc's test vector, three ways ---------------------------------------

JS_PROBE = r"""
const path = require('path');
const dir = process.argv[1];
const vendor = path.join(dir, 'vendor', 'sm-crypto-0.5.8');
const api = require(path.join(dir, 'certificate.js'))(require(path.join(vendor, 'sm2.js')), require(path.join(vendor, 'sm3.js')));
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; }).on('end', () => {
  const q = JSON.parse(input);
  const attempt = (f) => { try { return {ok: f()}; } catch (e) { return {error: e.message}; } };
  process.stdout.write(JSON.stringify({
    canonical: q.canonical.map((t) => attempt(() => api.canonicalJson(api.parseJson(t)))),
    leaf_hash: q.leaves.map((t) => api.leafHash(api.parseJson(t))),
    merkle_root: api.merkleRoot(q.hashes),
    proofs: q.hashes.map((h) => api.merkleProof(q.hashes, h)),
    sm2_verify: q.signed.map((s) => api.sm2Verify(s.key, s.text, s.signature)),
    sm3: (q.texts || []).map((t) => api.sm3Hex(t)),
    fingerprints: (q.keys || []).map((k) => api.keyFingerprint(k)),
  }));
});
"""


def run_js(node, query: dict) -> dict:
    result = subprocess.run(
        [node, "-e", JS_PROBE, str(TOOL)],
        input=json.dumps(query, ensure_ascii=False),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# Independent of the platform's code and of the verifier's: the reference text, OpenSSL's SM3.
def py_canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def py_sm3(data: bytes) -> str:
    return hashlib.new("sm3", data).hexdigest()


def py_root(hashes: list[str]) -> str:
    level = sorted(hashes)
    while len(level) > 1:
        level = [
            py_sm3(f"node:{level[i]}{level[i + 1]}".encode()) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


EDGE_DOCUMENTS = [
    {
        "b": 1,
        "a": [],
        "": {},
        "é": "é",
        "\U0001f600": "astral key",
        "\uffff": "BMP max",
        "\ue000": "private use",
        "Z": -(2**53 - 1),
    },
    ['"\\/', "\x00\x1f\x7f\x08\x0c\n\r\t", "\u2028\u2029", "碳 🌱 \U0010ffff", 0, -0, 9007199254740991],
    {"nested": {"k": [[], [{}], [1, [2, [3]]]], "emoji 🌱": {"z": "a", "a": "z"}}},
]


def test_canonical_json_of_js_is_pythons(node):
    texts = [json.dumps(doc, ensure_ascii=True, indent=2) for doc in EDGE_DOCUMENTS]  # escaped input, to be unescaped
    texts += [json.dumps(doc, ensure_ascii=False) for doc in EDGE_DOCUMENTS]
    refused = [
        '{"a":1.0}',
        '{"a":1e3}',
        '{"a":null}',
        '{"a":true}',
        '{"a":9007199254740992}',
        '{"a":1,"a":2}',
        '"\\udc00"',
    ]
    # sm-crypto's own UTF-8 encoder gets U+40000..U+FFFFF wrong; the verifier hands it TextEncoder's bytes
    astral = {"reduction_id": "\U00050000 \U000fffff 🌱 碳", "grams": 1}
    out = run_js(
        node, {"canonical": texts + refused, "leaves": [json.dumps(astral)], "hashes": ["00" * 32], "signed": []}
    )
    assert out["leaf_hash"] == [py_sm3(b"leaf:" + py_canonical(astral).encode("utf-8"))]
    expected = [py_canonical(doc) for doc in EDGE_DOCUMENTS] * 2
    assert [c.get("ok") for c in out["canonical"][: len(texts)]] == expected
    reasons = [c.get("error", "") for c in out["canonical"][len(texts) :]]
    assert "found the float 1.0" in reasons[0] and "found the float 1e3" in reasons[1] and "found null" in reasons[2]
    assert "found boolean true" in reasons[3] and "beyond 2^53-1" in reasons[4]
    assert 'duplicate key "a"' in reasons[5] and "lone surrogate" in reasons[6]


def doc_table() -> dict:
    """| name | `value` | rows of the test-vector section of docs/certificate.md."""
    section = DOC[DOC.index("## 10. Test vector") :]
    rows = {}
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) == 4 and cells[0] == "" and cells[3] == "" and "`" in cells[2]:
            rows[cells[1].strip()] = "".join(re.findall(r"`([^`]*)`", cells[2]))
    return rows


def test_doc_test_vector_three_ways(node):
    v = doc_table()
    keys, cert = doc_vector()
    entry = cert["batches"][0]
    all_leaves = [json.loads(v[f"leaf {k}"]) for k in (1, 2, 3)]
    hashes = [v[f"leaf hash {k}"] for k in (1, 2, 3)]

    # 1. the doc is what the fixture code makes (doc and code cannot drift apart), and so is the example file
    assert v == dict(doc_vector_rows())
    assert json.loads(EXAMPLE.read_text()) == cert
    assert [le["leaf"] for le in entry["leaves"]] == [all_leaves[0], all_leaves[2]]
    assert (v["bank public key"], v["registry public key"]) == (keys.bank_public, keys.registry_public)

    # 2. independent Python: reference canonical JSON, OpenSSL's SM3, the tree written out, gmssl's SM2
    assert [py_canonical(leaf) for leaf in all_leaves] == [
        v[f"leaf {k}"] for k in (1, 2, 3)
    ]  # the doc prints them canonical
    assert [py_sm3(b"leaf:" + py_canonical(leaf).encode()) for leaf in all_leaves] == hashes
    assert v["sorted leaf hashes"] == ",".join(sorted(hashes))
    low, mid, high = sorted(hashes)
    assert v["level 1, node 1"] == py_sm3(f"node:{low}{mid}".encode())
    assert (
        v["merkle_root"]
        == py_sm3(f"node:{v['level 1, node 1']}{high}".encode())
        == py_root(hashes)
        == entry["batch"]["merkle_root"]
    )
    assert json.loads(v["proof of leaf 3"]) == entry["leaves"][1]["proof"]
    batch_digest = py_sm3(v["canonical_json(batch)"].encode("utf-8"))
    assert v["SM3 of canonical_json(batch)"] == batch_digest
    assert json.loads(v["canonical_json(issuance record)"])["batch_digest"] == batch_digest
    assert py_canonical(entry["issuance"]["record"]) == v["canonical_json(issuance record)"]
    assert py_canonical(entry["retirements"][0]["record"]) == v["canonical_json(retirement record)"]
    assert v["bank key fingerprint"] == py_sm3(bytes.fromhex(v["bank public key"]))
    assert v["registry key fingerprint"] == py_sm3(bytes.fromhex(v["registry public key"]))
    assert v["certificate digest"] == py_sm3(py_canonical(cert).encode("utf-8"))
    from carbon_dev.gm_testing import gmssl_reference

    for private, public, text, name in (
        (v["bank private key"], v["bank public key"], v["canonical_json(batch)"], "bank_signature"),
        (
            v["registry private key"],
            v["registry public key"],
            v["canonical_json(issuance record)"],
            "issuance registry_signature",
        ),
        (
            v["registry private key"],
            v["registry public key"],
            v["canonical_json(retirement record)"],
            "retirement registry_signature",
        ),
    ):
        gmssl = gmssl_reference(private, public)
        assert gmssl.verify_with_sm3(v[name], text.encode("utf-8"))
        assert gmssl.sign_with_sm3(text.encode("utf-8"), v["k of " + name]) == v[name]  # the doc's k reproduces it

    # 3. the verifier's JavaScript
    js = run_js(
        node,
        {
            "canonical": [
                v["canonical_json(batch)"],
                v["canonical_json(issuance record)"],
                v["canonical_json(retirement record)"],
            ],
            "leaves": [v[f"leaf {k}"] for k in (1, 2, 3)],
            "hashes": hashes,
            "signed": [
                {"key": keys.bank_public, "text": v["canonical_json(batch)"], "signature": v["bank_signature"]},
                {
                    "key": keys.registry_public,
                    "text": v["canonical_json(issuance record)"],
                    "signature": v["issuance registry_signature"],
                },
                {
                    "key": keys.registry_public,
                    "text": v["canonical_json(retirement record)"],
                    "signature": v["retirement registry_signature"],
                },
                {"key": keys.registry_public, "text": v["canonical_json(batch)"], "signature": v["bank_signature"]},
            ],
            "texts": [v["canonical_json(batch)"]],
            "keys": [v["bank public key"], v["registry public key"]],
        },
    )
    assert [c["ok"] for c in js["canonical"]] == [
        v["canonical_json(batch)"],
        v["canonical_json(issuance record)"],
        v["canonical_json(retirement record)"],
    ]
    assert js["leaf_hash"] == hashes and js["merkle_root"] == v["merkle_root"]
    assert js["proofs"][2] == json.loads(v["proof of leaf 3"])
    assert js["sm2_verify"] == [True, True, True, False]
    assert js["sm3"] == [v["SM3 of canonical_json(batch)"]]
    assert js["fingerprints"] == [v["bank key fingerprint"], v["registry key fingerprint"]]

    # and the example file is VALID with the doc's keys
    result = run_cli(node, EXAMPLE.read_bytes(), v["bank public key"], v["registry public key"])
    assert result.returncode == 0 and result.stdout.startswith("VALID"), result.stdout
