"""A retirement certificate (docs/certificate.md §8) as a PDF a person reads, with fpdf2.

The PDF is a rendering of the JSON certificate for people: the owner, each batch (methodology,
version, vintage, the owner's reductions and grams), the serial ranges retired with beneficiary
and reason, and how to verify it: the certificate's digest and the fingerprints of the bank's and
the registry's keys (docs/certificate.md §2), which the reference verifier
(tools/certificate-verifier) prints too. It proves nothing by itself; the JSON does.

Bank keys: a batch is signed by the key the bridge had when it formed the batch, and stored with
that key's public half (exchange_bridge.lifecycle, store_batch). After a rotation a certificate
holds batches of the old key and of the new one, and the certificate itself does not say which
(its format has no member for it): the caller passes `bank_keys` (batch_id -> public key, what
`stored_bank_keys` reads) beside the certificate. With one key for every batch the PDF shows that
key once; with several it names, per batch, the fingerprint of the key that signed it, and lists
every key for the verifier.

Registry keys: the registry signs each record with the key it has when it decides the operation,
and after it rotates its key it keeps publishing the earlier ones (GET /v1/public-key,
`previous_public_keys`). A record is accepted when one of those keys verifies it; the PDF names,
per batch, which registry key signed the issuance and the retirements when more than one did.

Fonts: the certificate's text may hold any character (beneficiaries in Chinese, for instance).
The first font found of CERTIFICATE_PDF_FONT (a TTF/OTF/TTC path), then FONT_CANDIDATES (Debian's
CJK and DejaVu fonts) is embedded, subset; with none, the PDF core font Helvetica (Latin-1) is
used. A character the chosen font has no glyph for is written as [U+XXXX] and the PDF says so, so
nothing is silently dropped. A deployment that issues certificates in Chinese installs a CJK font
(Debian: fonts-wqy-microhei or fonts-noto-cjk) or points CERTIFICATE_PDF_FONT at one.
"""

import base64
import os
import re
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge import batch_format as bf
from exchange_bridge.errors import InvalidRequest, OutcomeUnknown

FONT_ENV = "CERTIFICATE_PDF_FONT"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
VERIFIER = "tools/certificate-verifier/ in the platform's source repository"
LATIN_1 = frozenset(range(0x20, 0x7F)) | frozenset(range(0xA0, 0x100))


def plain_key(public_key: str) -> str:
    """128 lower-case hex X||Y (a leading 04 taken off)."""
    key = public_key.lower()
    return key[2:] if len(key) == 130 else key


def fingerprint(public_key: str) -> str:
    """SM3 of the key's 64 bytes X||Y (docs/certificate.md §2)."""
    return gm.sm3_hex(bytes.fromhex(plain_key(public_key)))


def stored_bank_keys(certificate: dict, repo) -> dict:
    """batch_id -> the public key the bridge stored with each batch of the certificate: the key
    that signed it. `repo` is the bridge's Repository."""
    keys = {}
    for entry in certificate["batches"]:
        stored = repo.batch(entry["batch"]["batch_id"])
        if stored is not None and stored.get("public_key"):
            keys[entry["batch"]["batch_id"]] = stored["public_key"]
    return keys


def signing_keys(certificate: dict, bank_public_key: str, bank_keys: dict | None = None) -> list[str]:
    """The bank key of each batch, in the certificate's order: its key in `bank_keys`, else
    `bank_public_key` (the bridge's current key)."""
    bank_keys = bank_keys or {}
    return [plain_key(bank_keys.get(entry["batch"]["batch_id"], bank_public_key)) for entry in certificate["batches"]]


def digest(certificate: dict) -> str:
    """SM3 of the certificate's canonical JSON (docs/certificate.md §2)."""
    return gm.sm3_hex(canonical_bytes(certificate))


def grouped(hex_text: str) -> str:
    return " ".join(hex_text[i : i + 4] for i in range(0, len(hex_text), 4))


def grams_text(grams: int) -> str:
    return f"{grams:,} g ({grams / bf.GRAMS_PER_UNIT:.6f} t CO2e)"


class Font:
    """The font the PDF is written in, and which characters it can show."""

    def __init__(self, path: str | None = None):
        self.path = path or self.find()
        if self.path is None:
            self.family, self.covered = "helvetica", LATIN_1
        else:
            from fontTools.ttLib import TTFont

            with TTFont(self.path, fontNumber=0, lazy=True) as face:
                self.covered = frozenset(face.getBestCmap())
            self.family = "certificate"

    @staticmethod
    def find() -> str | None:
        chosen = os.environ.get(FONT_ENV, "")
        if chosen:
            if not Path(chosen).is_file():
                raise SystemExit(f"{FONT_ENV}={chosen} is not a font file")
            return chosen
        return next((path for path in FONT_CANDIDATES if Path(path).is_file()), None)

    def install(self, pdf: FPDF) -> None:
        if self.path is not None:
            pdf.add_font(self.family, "", self.path)

    def shows(self, text: str) -> bool:
        return all(ord(c) in self.covered for c in text)

    def text(self, value) -> str:
        """`value` as text this font shows: any other character as [U+XXXX]."""
        return "".join(c if ord(c) in self.covered else f"[U+{ord(c):04X}]" for c in str(value))


class CertificatePdf(FPDF):
    def __init__(self, font: Font, footer_text: str):
        super().__init__(format="A4")
        self.font, self.footer_text = font, footer_text
        font.install(self)
        self.set_auto_page_break(True, margin=18)
        self.set_margins(16, 16, 16)

    def footer(self):
        self.set_y(-13)
        self.set_font(self.font.family, size=7)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, self.font.text(f"{self.footer_text} · page {self.page_no()}/{{nb}}"), align="C")


def registry_keys_of(published: dict) -> list[str]:
    """The registry's keys from its GET /v1/public-key answer: the current one first, then the
    earlier ones it still vouches for (absent in an answer from before rotation existed: none)."""
    return list(
        dict.fromkeys(plain_key(k) for k in [published["public_key"], *published.get("previous_public_keys", [])])
    )


def registry_signers(certificate: dict, registry_keys: list[str]) -> list[tuple[str, list[str]]] | None:
    """Per batch, the registry key that verifies its issuance record and each of its retirement
    records -> [(issuance key, [retirement keys])], or None when a record verifies with none."""

    def signer(signed: dict) -> str | None:
        return next(
            (key for key in registry_keys if _verifies(key, signed["record"], signed["registry_signature"])), None
        )

    out = []
    for entry in certificate["batches"]:
        keys = [signer(signed) for signed in [entry["issuance"], *entry["retirements"]]]
        if None in keys:
            return None
        out.append((keys[0], keys[1:]))
    return out


def _verifies(key: str, document: dict, signature: str) -> bool:
    try:
        return gm.sm2_verify(key, canonical_bytes(document), bytes.fromhex(signature))
    except (ValueError, TypeError):
        return False


def _numbered(keys: list[str], listed: list[str]) -> str:
    """Each of `keys` by its place among the `listed` keys, as in "key 2 of 3, key 3 of 3"."""
    return ", ".join(f"key {listed.index(k) + 1} of {len(listed)}" for k in dict.fromkeys(keys))


def _key_rows(who: str, keys: list[str]) -> tuple[list, list]:
    """(fingerprint rows, public key rows) of one party's keys, numbered when there are several."""
    if len(keys) == 1:
        return [(f"{who} key fingerprint", grouped(fingerprint(keys[0])))], [(f"{who} public key", keys[0])]
    n = len(keys)
    return (
        [(f"{who} key {k} of {n} fingerprint", grouped(fingerprint(key))) for k, key in enumerate(keys, 1)],
        [(f"{who} public key {k} of {n}", key) for k, key in enumerate(keys, 1)],
    )


def render(
    certificate: dict,
    bank_public_key: str,
    registry_public_key: str,
    font: Font | None = None,
    bank_keys: dict | None = None,
    signers: list[tuple[str, list[str]]] | None = None,
) -> bytes:
    """The PDF of `certificate` (carbon-retirement-certificate/2) as bytes. `bank_keys`: batch_id ->
    the public key that signed the batch, for batches not signed by `bank_public_key`. `signers`:
    the registry key of each batch's records (`registry_signers`); none given: all are
    `registry_public_key`'s."""
    font = font or Font()
    batches = certificate["batches"]
    batch_keys = signing_keys(certificate, bank_public_key, bank_keys)
    used = list(dict.fromkeys(batch_keys)) or [plain_key(bank_public_key)]
    registry_key = plain_key(registry_public_key)
    signers = signers or [(registry_key, [registry_key] * len(entry["retirements"])) for entry in batches]
    registry_used = list(dict.fromkeys(k for issuance, retirements in signers for k in [issuance, *retirements]))
    registry_used = registry_used or [registry_key]
    cert_digest = digest(certificate)
    pdf = CertificatePdf(font, f"{certificate['format']} · digest {cert_digest[:16]}...")
    pdf.set_title("Carbon retirement certificate")
    pdf.set_creator("Personal Carbon Account Platform (exchange_bridge.certificate_pdf)")
    pdf.add_page()
    width = pdf.epw

    def text(size: float, value, gap: float = 1.0, color=(30, 35, 41), height: float | None = None) -> None:
        pdf.set_font(font.family, size=size)
        pdf.set_text_color(*color)
        pdf.multi_cell(width, height or size * 0.5, font.text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    def rows(pairs, size: float = 9) -> None:
        pdf.set_font(font.family, size=size)
        with pdf.table(
            col_widths=(30, 70),
            text_align="LEFT",
            borders_layout="HORIZONTAL_LINES",
            line_height=5,
            first_row_as_headings=False,
        ) as t:
            for name, value in pairs:
                row = t.row()
                row.cell(font.text(name))
                row.cell(font.text(value))
        pdf.ln(2)

    retired = [r["record"] for entry in batches for r in entry["retirements"]]
    beneficiaries = list(dict.fromkeys(r["beneficiary"] for r in retired))
    text(18, "Carbon retirement certificate", gap=0)
    subtitle = "个人碳账户 · 减排量注销证明"
    if font.shows(subtitle):
        text(11, subtitle, gap=0, color=(90, 96, 104))
    text(
        9,
        "This certificate states that the emission reductions listed below went into batches the bank "
        "signed, that the exchange registry issued serialized tonne units for those batches, and that "
        "the units listed were retired. It is a rendering of the JSON certificate for people; verify "
        "the JSON (last section).",
        gap=3,
        color=(90, 96, 104),
    )
    rows(
        [
            ("Owner (pseudonymous id)", certificate["owner_pid"]),
            ("Issued at", certificate["issued_at"]),
            ("Owner's reductions", f"{sum(len(e['leaves']) for e in batches)} in {len(batches)} batch(es)"),
            ("Owner's grams", grams_text(certificate["total_grams"])),
            ("Units retired", f"{sum(r['units'] for r in retired)} t CO2e (whole tonnes of the batches below)"),
            ("Beneficiaries", "; ".join(beneficiaries)),
            ("Format", certificate["format"]),
        ]
    )

    for n, (entry, batch_key, (issuance_key, retirement_keys)) in enumerate(zip(batches, batch_keys, signers), 1):
        batch, issue = entry["batch"], entry["issuance"]["record"]
        mine = sum(item["leaf"]["grams"] for item in entry["leaves"])
        title = f"Batch {n} of {len(batches)}: {batch['methodology_id']} v{batch['methodology_version']}, vintage {batch['vintage']}"
        text(12, title, gap=1)
        pairs = [
            ("Batch id", batch["batch_id"] + (f" (attempt {batch['attempt']})" if batch.get("attempt", 1) > 1 else "")),
            ("Period", batch["period"]),
            ("Owner's reductions", f"{len(entry['leaves'])}, {grams_text(mine)}"),
            (
                "Batch total",
                f"{batch['quantity_grams']:,} g of {batch['record_count']} reductions (all owners)"
                + (f" + {batch['carried_in_grams']:,} g carried in" if batch["carried_in_grams"] else ""),
            ),
            (
                "Issued",
                f"{issue['units']} unit(s) {issue['serial']} (serials {issue['start']}-{issue['end']}) "
                f"to {issue['to_holder']} at {issue['at']}; {issue['carried_out_grams']:,} g carried out",
            ),
        ]
        if len(used) > 1:
            pairs.append(
                (
                    "Signed with bank key",
                    f"{used.index(batch_key) + 1} of {len(used)}, fingerprint {grouped(fingerprint(batch_key))}",
                )
            )
        if len(registry_used) > 1:
            retired_with = f"; retirements: {_numbered(retirement_keys, registry_used)}" if retirement_keys else ""
            pairs.append(
                ("Registry records signed with", f"issuance: {_numbered([issuance_key], registry_used)}{retired_with}")
            )
        rows(pairs)
        pdf.set_font(font.family, size=8)
        with pdf.table(
            col_widths=(38, 9, 22, 22, 24),
            text_align="LEFT",
            line_height=4.2,
            headings_style=FontFace(emphasis="", fill_color=(234, 237, 241)),
        ) as t:
            head = t.row()
            for name in ("Serials retired", "Units", "Beneficiary", "Reason", "Retired at, registry record"):
                head.cell(name)
            for signed in entry["retirements"]:
                r = signed["record"]
                row = t.row()
                row.cell(font.text(f"{r['serial']} ({r['start']}-{r['end']})"))
                row.cell(str(r["units"]))
                row.cell(font.text(r["beneficiary"]))
                row.cell(font.text(r["reason"]))
                row.cell(font.text(f"{r['at']}, {r['op_id']}"))
        pdf.ln(4)

    text(12, "How to verify this certificate", gap=1)
    steps, key_rows = verification_steps(used, registry_used, cert_digest)
    for step in steps:
        text(9, step, gap=1)
    rows(key_rows, size=8)
    text(
        9,
        "4. The verifier must say VALID. VALID means: the bank signed every batch, each reduction "
        "listed is in its batch (Merkle proof) and is the owner's, the registry signed the issuance of "
        "exactly that batch in whole tonnes and the retirements listed, inside the issued serials, and "
        "the grams add up. It does not say the retired units are the owner's alone: a batch's units "
        "stand for the grams of all its reductions. The format and every step: docs/certificate.md.",
        gap=1,
    )
    if font.path is None or any(font.text(v) != v for v in _texts(certificate)):
        text(
            8,
            "Characters this PDF's font cannot show are written as [U+XXXX] (their Unicode code "
            "points); the JSON certificate holds the text exactly.",
            color=(90, 96, 104),
        )
    return bytes(pdf.output())


def verification_steps(bank_keys: list[str], registry_keys: list[str], cert_digest: str) -> tuple[list[str], list]:
    """Steps 1-3 of "how to verify" and the key rows under them, for the bank keys and registry
    keys that signed the certificate (each named and numbered when there are several)."""
    bank_fingerprints, bank_publics = _key_rows("Bank", bank_keys)
    registry_fingerprints, registry_publics = _key_rows("Registry", registry_keys)
    key_rows = bank_fingerprints + registry_fingerprints + bank_publics + registry_publics
    trusted = (
        "Get the bank's and the exchange registry's SM2 public keys from them through a channel you trust "
        "(the registry: GET /v1/public-key), not from whoever gave you this PDF. The verifier shows their "
        "fingerprints (SM3 of the key's 64 bytes)"
    )
    if len(bank_keys) == 1 and len(registry_keys) == 1:
        command = "node verify.js --bank-key <hex> --registry-key <hex> certificate.json."
        keys_step = f"3. {trusted}; they must be:"
    else:
        bank_args = "--bank-key <hex>" if len(bank_keys) == 1 else "--bank-key <hex> --bank-key <hex> ..."
        registry_args = (
            "--registry-key <hex>" if len(registry_keys) == 1 else "--registry-key <hex> --registry-key <hex> ..."
        )
        command = (
            f"node verify.js {bank_args} {registry_args} certificate.json, with one --bank-key per bank key "
            "and one --registry-key per registry key below (in the page: every key in its field)."
        )
        changed = []
        if len(bank_keys) > 1:
            changed.append(
                f"The bank changed its signing key while these batches were made: {len(bank_keys)} bank keys signed "
                "them (each batch above names its key)."
            )
        if len(registry_keys) > 1:
            changed.append(
                f"The exchange registry changed its signing key: {len(registry_keys)} registry keys signed these "
                "records (each batch above names the keys of its issuance and retirements)."
            )
        keys_step = (
            f"3. {' '.join(changed)} The verifier needs every one. {trusted} and which key verified each "
            "signature; they must be:"
        )
    steps = [
        "1. Get the JSON certificate this PDF was made from (it comes with it). Its digest, SM3 of its "
        f"canonical JSON, is {grouped(cert_digest)}; the verifier prints it.",
        f"2. Get the verifier: {VERIFIER}: open index.html in any browser (it works offline) or run {command}",
        keys_step,
    ]
    return steps, key_rows


def _texts(certificate: dict):
    yield certificate["owner_pid"]
    for entry in certificate["batches"]:
        for signed in entry["retirements"]:
            yield signed["record"]["beneficiary"]
            yield signed["record"]["reason"]


def verified_signatures(
    certificate: dict, bank_public_key: str, registry_keys: list[str], bank_keys: dict | None = None
) -> list[tuple[str, list[str]]] | None:
    """The registry key of each batch's records (`registry_signers`) when every signature in the
    certificate verifies — each batch's with its own bank key when `bank_keys` names one, each
    record with one of `registry_keys` —, else None (the bridge never hands out a PDF of a
    certificate it could not verify itself)."""
    for entry, batch_key in zip(certificate["batches"], signing_keys(certificate, bank_public_key, bank_keys)):
        if not _verifies(batch_key, entry["batch"], entry["bank_signature"]):
            return None
    return registry_signers(certificate, registry_keys)


def answer(
    certificate: dict,
    bank_public_key: str,
    registry,
    font: Font | None = None,
    bank_keys: dict | None = None,
    with_pdf: bool = True,
) -> dict:
    """What RPC `certificate_pdf` returns: the certificate, its PDF (base64), file names, its digest
    and the fingerprints of the bank's current key and the registry's. `registry` is the
    RegistryClient (its GET /v1/public-key: the current key and the earlier ones); `bank_keys` as
    in `render` (`stored_bank_keys`)."""
    if not certificate["batches"]:
        raise InvalidRequest("none of these reductions of the owner is in a batch with retired units")
    try:
        registry_keys = registry_keys_of(registry.public_key())
    except Exception as error:  # the registry is unreachable: the caller retries
        raise OutcomeUnknown(f"the registry's public key could not be read: {type(error).__name__}") from error
    signers = verified_signatures(certificate, bank_public_key, registry_keys, bank_keys)
    if signers is None:
        raise InvalidRequest(
            "the certificate's signatures do not verify with the bank keys stored with its batches "
            "and the registry's published keys"
        )
    registry_public_key = registry_keys[0]
    pdf = render(certificate, bank_public_key, registry_public_key, font, bank_keys, signers) if with_pdf else b""
    owner = re.sub(r"[^A-Za-z0-9_-]", "-", certificate["owner_pid"])[:12]
    stem = f"carbon-retirement-certificate-{owner}-{re.sub(r'[^0-9-]', '', certificate['issued_at'][:10])}"
    return {
        "certificate": certificate,
        "pdf_base64": base64.b64encode(pdf).decode("ascii"),
        "pdf_filename": stem + ".pdf",
        "json_filename": stem + ".json",
        "digest": digest(certificate),
        "bank_key_fingerprint": fingerprint(bank_public_key),
        "registry_key_fingerprint": fingerprint(registry_public_key),
    }
