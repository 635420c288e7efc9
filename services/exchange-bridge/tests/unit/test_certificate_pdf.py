"""exchange_bridge.certificate_pdf: the PDF a person reads, made from the same certificate as the
JSON. Its text is read back from the PDF's own text objects (the page content streams decoded
through the embedded font's ToUnicode map, or Latin-1 for the core font), so the figures asserted
are what a reader sees."""

import base64
import re
import zlib

import pytest

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge import certificate_pdf as cp
from exchange_bridge.errors import InvalidRequest, OutcomeUnknown

from bridge_fakes import REGISTRY_KEYS
from certificate_support import (
    KEYS,
    ROTATED_KEYS,
    make_bridge,
    retired_batches,
    rotate_bank_key,
    rotate_registry_key,
    verify,
)


# -- reading a PDF's text back ------------------------------------------------------------------
def _streams(pdf: bytes) -> list[bytes]:
    out = []
    for m in re.finditer(rb"stream\r?\n", pdf):
        raw = pdf[m.end() : pdf.find(b"endstream", m.end())]
        try:  # a decompressobj leaves the EOL before `endstream` unused; stripping "\r\n" first
            # would also cut compressed data that happens to end in one of those bytes
            out.append(zlib.decompressobj().decompress(raw))
        except zlib.error:
            out.append(raw.rstrip(b"\r\n"))
    return out


def _unescape(literal: bytes) -> bytes:
    simple = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}
    out, i = bytearray(), 0
    while i < len(literal):
        c = literal[i : i + 1]
        if c != b"\\":
            out += c
            i += 1
            continue
        nxt = literal[i + 1 : i + 2]
        octal = re.match(rb"[0-7]{1,3}", literal[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            i += 1 + len(octal.group())
        else:
            out += simple.get(nxt, nxt)
            i += 2
    return bytes(out)


def _literal_at(content: bytes, i: int) -> tuple[bytes, int]:
    """The literal string opening at content[i] == "(" (nested parentheses, escapes) and its end."""
    depth, j, buf = 1, i + 1, bytearray()
    while depth and j < len(content):
        c = content[j : j + 1]
        if c == b"\\":
            buf += content[j : j + 2]
            j += 2
            continue
        depth += {b"(": 1, b")": -1}.get(c, 0)
        if depth:
            buf += c
        j += 1
    return _unescape(bytes(buf)), j


def _text_objects(content: bytes) -> list[list[bytes]]:
    """The strings of each BT … ET text object of a content stream (operators outside strings)."""
    objects, current, i = [], None, 0

    def operator(name: bytes) -> bool:
        before = content[i - 1 : i] if i else b" "
        return content.startswith(name, i) and before in b" \n\r\t" and content[i + 2 : i + 3] in b" \n\r\t"

    while i < len(content):
        if content[i : i + 1] == b"(":
            literal, i = _literal_at(content, i)
            if current is not None:
                current.append(literal)
        elif operator(b"BT"):
            current, i = [], i + 2
        elif operator(b"ET"):
            objects.append(current or [])
            current, i = None, i + 2
        else:
            i += 1
    return objects


def pdf_text(pdf: bytes) -> str:
    """Every text object's string, one per line (the renderer embeds one font, or the core one)."""
    streams = _streams(pdf)
    cmap = {}
    for s in streams:
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", s, re.S):
            for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                cmap[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", s, re.S):
            for low, high, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                for k in range(int(high, 16) - int(low, 16) + 1):
                    cmap[int(low, 16) + k] = chr(int(dst, 16) + k)
    lines = []
    for s in streams:
        if not re.search(rb"BT /F\d+ [0-9.]+ Tf", s):  # a page's content stream, not a font program
            continue
        for parts in _text_objects(s):
            if cmap:
                text = "".join(
                    cmap.get(int.from_bytes(p[k : k + 2], "big"), "?") for p in parts for k in range(0, len(p), 2)
                )
            else:
                text = "".join(p.decode("cp1252") for p in parts)
            if text:
                lines.append(text)
    return "\n".join(lines)


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


# -- the certificate a bridge builds ---------------------------------------------------------------
@pytest.fixture(scope="module")
def doc():
    bridge = make_bridge()
    return bridge.certificate("pid-alice", retired_batches(bridge))


def core_font() -> cp.Font:
    font = cp.Font.__new__(cp.Font)
    font.path, font.family, font.covered = None, "helvetica", cp.LATIN_1
    return font


def key_figures(doc: dict) -> list[str]:
    """What a reader must find: owner, total, per batch its id, methodology/vintage, the owner's
    grams, the serials retired with beneficiary and reason; the digest and both fingerprints."""
    figures = [doc["owner_pid"], f"{doc['total_grams']:,} g", doc["issued_at"]]
    for entry in doc["batches"]:
        batch = entry["batch"]
        figures += [
            batch["batch_id"],
            f"{batch['methodology_id']} v{batch['methodology_version']}, vintage {batch['vintage']}",
            f"{sum(item['leaf']['grams'] for item in entry['leaves']):,} g",
            entry["issuance"]["record"]["serial"],
        ]
        for signed in entry["retirements"]:
            r = signed["record"]
            figures += [f"{r['serial']} ({r['start']}-{r['end']})", r["op_id"]]
    figures += [cp.grouped(cp.digest(doc)), cp.grouped(cp.fingerprint(KEYS[1]))]
    figures += [cp.grouped(cp.fingerprint(REGISTRY_KEYS[1])), "tools/certificate-verifier/", "GET /v1/public-key"]
    return figures


@pytest.mark.parametrize("font", ["found", "core"])
def test_the_pdf_shows_the_certificates_key_figures(doc, font):
    chosen = cp.Font() if font == "found" else core_font()
    pdf = cp.render(doc, KEYS[1], REGISTRY_KEYS[1], chosen)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf)
    missing = [figure for figure in key_figures(doc) if flat(figure) not in flat(text)]
    assert missing == [], text
    beneficiary = chosen.text("张三")  # as itself, or [U+5F20][U+4E09] where the font has no glyph
    assert flat(beneficiary) in flat(text) and flat(chosen.text("个人碳中和")) in flat(text)
    assert ("[U+5F20]" in text) == (not chosen.shows("张三"))
    if not chosen.shows("张三"):
        assert "written as [U+XXXX]" in text  # the reader is told


def test_with_a_cjk_font_chinese_text_is_shown_as_itself(doc):
    font = cp.Font()
    if not font.shows("张三个人碳中和"):
        pytest.skip(
            f"no CJK font here ({cp.FONT_ENV} unset; none of {cp.FONT_CANDIDATES[:-1]}): "
            "Debian: apt-get install fonts-wqy-microhei"
        )
    text = pdf_text(cp.render(doc, KEYS[1], REGISTRY_KEYS[1], font))
    assert "张三" in text and "个人碳中和" in text and "个人碳账户" in text and "[U+" not in text


def test_the_font_can_be_chosen(doc, monkeypatch, tmp_path):
    monkeypatch.delenv(cp.FONT_ENV, raising=False)
    monkeypatch.setattr(cp, "FONT_CANDIDATES", (str(tmp_path / "none.ttf"),))
    assert (cp.Font().path, cp.Font().family) == (None, "helvetica")  # no font at all: the core font
    monkeypatch.undo()
    monkeypatch.setenv(cp.FONT_ENV, str(tmp_path / "missing.ttf"))
    with pytest.raises(SystemExit, match="CERTIFICATE_PDF_FONT"):
        cp.Font()
    found = next((p for p in cp.FONT_CANDIDATES if cp.Path(p).is_file()), None)
    if found is None:
        pytest.skip("no TrueType font on this machine to choose")
    monkeypatch.setenv(cp.FONT_ENV, found)
    assert cp.Font().path == found


class Registry:
    """GET /v1/public-key: the current key and, after a rotation, the earlier ones."""

    def __init__(self, key: str | None, previous=()):
        self.key, self.previous = key, list(previous)

    def public_key(self) -> dict:
        if self.key is None:
            raise ConnectionError("refused")
        return {"algorithm": "SM2", "public_key": self.key, "previous_public_keys": self.previous}


def test_the_rpc_answer_is_the_certificate_and_its_pdf(doc):
    answer = cp.answer(doc, KEYS[1], Registry(REGISTRY_KEYS[1]), core_font())
    assert answer["certificate"] is doc and verify(doc)["verdict"] == "VALID"
    pdf = base64.b64decode(answer["pdf_base64"])
    assert pdf.startswith(b"%PDF-") and flat(doc["owner_pid"]) in flat(pdf_text(pdf))
    assert answer["digest"] == verify(doc)["digest"] == cp.digest(doc)
    assert answer["bank_key_fingerprint"] == gm.sm3_hex(bytes.fromhex(KEYS[1]))
    assert answer["registry_key_fingerprint"] == verify(doc)["keys"]["registry"]["fingerprint"]
    assert re.fullmatch(r"carbon-retirement-certificate-pid-alice-\d{4}-\d{2}-\d{2}\.pdf", answer["pdf_filename"])
    assert answer["json_filename"] == answer["pdf_filename"][:-4] + ".json"


def test_the_rpc_answer_refuses_what_it_cannot_stand_behind(doc):
    with pytest.raises(InvalidRequest, match="retired units"):
        cp.answer({**doc, "batches": []}, KEYS[1], Registry(REGISTRY_KEYS[1]))
    with pytest.raises(InvalidRequest, match="do not verify"):  # the registry's key is not the one that signed
        cp.answer(doc, KEYS[1], Registry(gm.generate_sm2_keypair()[1]))
    with pytest.raises(OutcomeUnknown):
        cp.answer(doc, KEYS[1], Registry(None))


# -- a certificate across a rotation of the bank's key ----------------------------------------------
@pytest.fixture(scope="module")
def rotated():
    """(certificate, bridge): one of pid-alice's batches signed by the bank's old key, the other by
    its new one (the bridge rotated in between)."""
    bridge = make_bridge()
    alice = retired_batches(bridge, between=lambda: rotate_bank_key(bridge))
    return bridge.certificate("pid-alice", alice), bridge


def the_one_that_signed(keys, document: dict, signature: str) -> str:
    """Which of `keys` signed `document`, by its signature (the certificate lists batches by id,
    not in the order they were formed): exactly one must."""
    [key] = [public for public in keys if gm.sm2_verify(public, canonical_bytes(document), bytes.fromhex(signature))]
    return key


def signer_of(entry: dict) -> str:
    """Which of the two bank keys signed the batch."""
    return the_one_that_signed((KEYS[1], ROTATED_KEYS[1]), entry["batch"], entry["bank_signature"])


def test_the_pdf_names_the_bank_key_of_each_batch_after_a_rotation(rotated):
    doc, bridge = rotated
    signers = [signer_of(entry) for entry in doc["batches"]]
    assert sorted(signers) == sorted([KEYS[1], ROTATED_KEYS[1]])
    keys = cp.stored_bank_keys(doc, bridge.repo)
    assert keys == {entry["batch"]["batch_id"]: key for entry, key in zip(doc["batches"], signers)}  # as stored
    assert verify(doc, [KEYS[1], ROTATED_KEYS[1]])["verdict"] == "VALID"

    text = flat(pdf_text(cp.render(doc, ROTATED_KEYS[1], REGISTRY_KEYS[1], core_font(), keys)))
    sections = [text.index(flat(s)) for s in ("Batch 1 of 2", "Batch 2 of 2", "How to verify")]
    for n, (signer, other) in enumerate(zip(signers, signers[::-1])):
        # each batch's section names its own key (numbered as in the list below), and only it
        section = text[sections[n] : sections[n + 1]]
        assert flat(f"{n + 1} of 2, fingerprint {cp.grouped(cp.fingerprint(signer))}") in section
        assert flat(cp.grouped(cp.fingerprint(other))) not in section
    verifying = text[sections[2] :]  # every key the verifier needs, with its fingerprint
    for k, key in enumerate(signers, 1):
        assert flat(f"Bank key {k} of 2 fingerprint{cp.grouped(cp.fingerprint(key))}") in verifying
        assert flat(f"Bank public key {k} of 2{key}") in verifying
    assert flat("--bank-key <hex> --bank-key <hex>") in verifying

    answer = cp.answer(doc, ROTATED_KEYS[1], Registry(REGISTRY_KEYS[1]), core_font(), bank_keys=keys)
    assert flat("Signed with bank key") in flat(pdf_text(base64.b64decode(answer["pdf_base64"])))
    with pytest.raises(InvalidRequest, match="do not verify"):  # one batch is not the current key's
        cp.answer(doc, ROTATED_KEYS[1], Registry(REGISTRY_KEYS[1]), core_font())


def test_the_pdf_of_batches_of_one_key_shows_that_key_once(rotated):
    doc, bridge = rotated
    older = {**doc, "batches": [entry for entry in doc["batches"] if signer_of(entry) == KEYS[1]]}
    pdf = cp.render(older, ROTATED_KEYS[1], REGISTRY_KEYS[1], core_font(), cp.stored_bank_keys(older, bridge.repo))
    text = flat(pdf_text(pdf))
    assert flat(f"Bank key fingerprint{cp.grouped(cp.fingerprint(KEYS[1]))}") in text  # the key that signed
    assert flat(cp.grouped(cp.fingerprint(ROTATED_KEYS[1]))) not in text and flat("Signed with bank key") not in text


# -- a certificate across a rotation of the registry's key ------------------------------------------
NEW_REGISTRY_KEYS = gm.generate_sm2_keypair()


@pytest.fixture(scope="module")
def registry_rotated():
    """pid-alice's certificate: one batch issued and retired under the registry's old key, the
    other under its new one."""
    bridge = make_bridge()
    alice = retired_batches(bridge, between=lambda: rotate_registry_key(bridge, NEW_REGISTRY_KEYS))
    return bridge.certificate("pid-alice", alice)


def registry_signer_of(signed: dict) -> str:
    """Which of the registry's two keys signed the record."""
    return the_one_that_signed((REGISTRY_KEYS[1], NEW_REGISTRY_KEYS[1]), signed["record"], signed["registry_signature"])


def test_after_the_registry_rotates_its_key_the_pdf_names_the_key_of_each_batchs_records(registry_rotated):
    doc = registry_rotated
    both = [REGISTRY_KEYS[1], NEW_REGISTRY_KEYS[1]]
    assert verify(doc, registry_key=both)["verdict"] == "VALID"
    assert verify(doc, registry_key=NEW_REGISTRY_KEYS[1])["verdict"] != "VALID"  # the old records need the old key

    answer = cp.answer(doc, KEYS[1], Registry(NEW_REGISTRY_KEYS[1], previous=[REGISTRY_KEYS[1]]), core_font())
    assert answer["registry_key_fingerprint"] == cp.fingerprint(NEW_REGISTRY_KEYS[1])  # the registry's current key
    text = flat(pdf_text(base64.b64decode(answer["pdf_base64"])))
    signers = [registry_signer_of(entry["issuance"]) for entry in doc["batches"]]
    assert sorted(signers) == sorted(both)
    numbered = list(dict.fromkeys(signers))  # numbered as the PDF lists them: by first appearance
    sections = [text.index(flat(s)) for s in ("Batch 1 of 2", "Batch 2 of 2", "How to verify")]
    for n, entry in enumerate(doc["batches"]):
        issuance = numbered.index(registry_signer_of(entry["issuance"])) + 1
        [retirements] = {numbered.index(registry_signer_of(r)) + 1 for r in entry["retirements"]}
        section = text[sections[n] : sections[n + 1]]
        expected = f"Registry records signed withissuance: key {issuance} of 2; retirements: key {retirements} of 2"
        assert flat(expected) in section
    verifying = text[sections[2] :]
    for k, key in enumerate(numbered, 1):
        assert flat(f"Registry key {k} of 2 fingerprint{cp.grouped(cp.fingerprint(key))}") in verifying
        assert flat(f"Registry public key {k} of 2{key}") in verifying
    assert flat("--registry-key <hex> --registry-key <hex>") in verifying
    assert flat("Bank key fingerprint") in verifying and flat("Signed with bank key") not in text  # one bank key

    with pytest.raises(InvalidRequest, match="do not verify"):  # a registry that forgot its old key
        cp.answer(doc, KEYS[1], Registry(NEW_REGISTRY_KEYS[1]), core_font())
    unrotated = {**doc, "batches": [e for e in doc["batches"] if registry_signer_of(e["issuance"]) == REGISTRY_KEYS[1]]}
    rotated_registry = Registry(NEW_REGISTRY_KEYS[1], [REGISTRY_KEYS[1]])
    one = flat(pdf_text(base64.b64decode(cp.answer(unrotated, KEYS[1], rotated_registry, core_font())["pdf_base64"])))
    # the records of these batches are the old key's alone: the PDF shows that key, once
    assert flat(f"Registry key fingerprint{cp.grouped(cp.fingerprint(REGISTRY_KEYS[1]))}") in one
    assert (
        flat(cp.grouped(cp.fingerprint(NEW_REGISTRY_KEYS[1]))) not in one and flat("Registry records signed") not in one
    )
