"""Each pure step of request authentication, and their order, without Flask or servers."""

import io
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from carbon_common import gm

from ingest import authentication, signing
from ingest.authentication import SignedRequest
from ingest.errors import ApiError

from ingest_fakes import FakeRepository

PRIVATE, PUBLIC = gm.generate_sm2_keypair()
PLATFORM_PRIVATE, PLATFORM_PUBLIC = gm.generate_sm2_keypair()
NOW_TS = 1_790_000_000.0
NOW = datetime.fromtimestamp(NOW_TS, timezone.utc)
SETTINGS = SimpleNamespace(max_body_bytes=4096, platform_private_key=PLATFORM_PRIVATE)
BODY = json.dumps({"records": [{"record_id": "r1"}]}).encode()


def code_of(call, *args, **kw) -> str:
    with pytest.raises(ApiError) as err:
        call(*args, **kw)
    return err.value.code


@pytest.fixture
def repo():
    repo = FakeRepository()
    repo.add_partner("metro-sz", rate=0)
    repo.add_key("metro-k1", "metro-sz", PUBLIC)
    repo.add_partner("bank-app", kind="bank_app", scenarios=())
    return repo


def signed(
    method="POST",
    path="/v1/records",
    body=BODY,
    *,
    key_id="metro-k1",
    partner_id="metro-sz",
    private=PRIVATE,
    encrypt=False,
    timestamp=str(int(NOW_TS)),
    nonce=None,
) -> SignedRequest:
    headers, body = signing.sign_request(
        private,
        partner_id,
        key_id,
        method,
        path,
        body,
        timestamp=timestamp,
        nonce=nonce,
        platform_public_hex=PLATFORM_PUBLIC if encrypt else None,
    )
    return SignedRequest(method, path, headers, body)


def authenticate(request, repo, kind="data_partner", **kw):
    return authentication.authenticate(request, kind, repo=repo, settings=SETTINGS, now_ts=NOW_TS, **kw)


class Recorder(authentication.Observer):
    def __init__(self):
        self.timings, self.verified = [], []

    def verify_seconds(self, seconds):
        self.timings.append(seconds)

    def signature_verified(self, partner_id):
        self.verified.append(partner_id)


# ---- the envelope ------------------------------------------------------------------------------


def test_body_is_read_up_to_its_limit_and_refused_beyond_whether_declared_or_not():
    assert authentication.read_body(5, io.BytesIO(b"12345"), 5) == b"12345"
    assert code_of(authentication.read_body, 6, io.BytesIO(b"123456"), 5) == "body_too_large"
    assert code_of(authentication.read_body, None, io.BytesIO(b"123456"), 5) == "body_too_large"  # chunked
    assert (
        code_of(authentication.read_body, 1, io.BytesIO(b"x"), authentication.body_limit("GET", 4096))
        == "body_too_large"
    )
    assert authentication.body_limit("POST", 4096) == 4096


def test_only_json_is_accepted():
    authentication.check_content_type("application/json")
    assert code_of(authentication.check_content_type, "text/plain") == "unsupported_media_type"


def test_headers_and_timestamp_are_parsed_before_anything_is_looked_up():
    request = signed()
    auth = authentication.parse_auth(request.headers, NOW_TS)
    assert (auth.partner_id, auth.key_id, auth.encryption) == ("metro-sz", "metro-k1", None)
    assert (
        code_of(authentication.parse_auth, {k: v for k, v in request.headers.items() if k != signing.H_NONCE}, NOW_TS)
        == "missing_auth_header"
    )
    assert code_of(authentication.parse_auth, request.headers, NOW_TS + 301) == "timestamp_out_of_window"
    millis = signed(timestamp=str(int(NOW_TS * 1000)))
    assert code_of(authentication.parse_auth, millis.headers, NOW_TS) == "invalid_timestamp"


def test_the_document_is_parsed_strictly_and_prechecked():
    seen = []
    assert authentication.parse_document(BODY, seen.append) == {"records": [{"record_id": "r1"}]}
    assert seen == [{"records": [{"record_id": "r1"}]}]
    assert code_of(authentication.parse_document, b'{"a": 1, "a": 2}') == "duplicate_key"


# ---- who signed it -----------------------------------------------------------------------------


def test_lookup_names_what_is_unknown_or_mismatched(repo):
    auth = authentication.parse_auth(signed().headers, NOW_TS)
    partner, key = authentication.lookup(repo, auth)
    assert (partner["_id"], key["_id"]) == ("metro-sz", "metro-k1")
    assert (
        code_of(authentication.lookup, repo, authentication.parse_auth(signed(partner_id="nobody").headers, NOW_TS))
        == "unknown_partner"
    )
    assert (
        code_of(authentication.lookup, repo, authentication.parse_auth(signed(key_id="k9").headers, NOW_TS))
        == "unknown_key"
    )
    assert (
        code_of(authentication.lookup, repo, authentication.parse_auth(signed(partner_id="bank-app").headers, NOW_TS))
        == "key_partner_mismatch"
    )


def test_key_policy_refuses_revoked_and_expired_keys():
    authentication.check_key({"not_after": NOW + timedelta(seconds=1)}, NOW)
    assert code_of(authentication.check_key, {"revoked_at": NOW - timedelta(days=1)}, NOW) == "key_revoked"
    assert code_of(authentication.check_key, {"not_after": NOW}, NOW) == "key_expired"
    naive_past = (NOW - timedelta(seconds=1)).replace(tzinfo=None)  # as a store may return it
    assert code_of(authentication.check_key, {"not_after": naive_past}, NOW) == "key_expired"


def test_signature_covers_method_path_and_body_and_is_timed():
    request = signed()
    auth = authentication.parse_auth(request.headers, NOW_TS)
    observer = Recorder()
    authentication.verify_signature({"public_key": PUBLIC}, request, auth, observer)
    assert len(observer.timings) == 1 and observer.timings[0] >= 0
    for changed in (
        SignedRequest("POST", "/v1/consents", request.headers, request.body),
        SignedRequest("PUT", request.path, request.headers, request.body),
        SignedRequest("POST", request.path, request.headers, request.body + b" "),
    ):
        assert code_of(authentication.verify_signature, {"public_key": PUBLIC}, changed, auth) == "signature_invalid"
    other_public = gm.generate_sm2_keypair()[1]
    assert code_of(authentication.verify_signature, {"public_key": other_public}, request, auth) == "signature_invalid"


def test_partner_policy_refuses_suspended_partners_and_the_wrong_kind():
    authentication.check_partner({"status": "active", "kind": "data_partner"}, "data_partner")
    assert (
        code_of(authentication.check_partner, {"status": "suspended", "kind": "data_partner"}, "data_partner")
        == "partner_suspended"
    )
    assert (
        code_of(authentication.check_partner, {"status": "active", "kind": "bank_app"}, "data_partner")
        == "forbidden_for_partner_kind"
    )


def test_an_enveloped_body_decrypts_only_with_its_own_headers():
    request = signed(encrypt=True)
    auth = authentication.parse_auth(request.headers, NOW_TS)
    assert authentication.decrypt(PLATFORM_PRIVATE, request.body, auth, 4096) == BODY
    other_nonce = authentication.parse_auth(signed(encrypt=True, nonce="n" * 24).headers, NOW_TS)
    assert code_of(authentication.decrypt, PLATFORM_PRIVATE, request.body, other_nonce, 4096) == "decryption_failed"
    assert code_of(authentication.decrypt, PLATFORM_PRIVATE, request.body, auth, len(BODY) - 1) == "body_too_large"


# ---- rate and replay ---------------------------------------------------------------------------


def test_rate_limit_counts_requests_per_minute_and_says_when_to_retry(repo):
    partner = repo.add_partner("bus-sz", rate=2)
    authentication.rate_limit(repo, partner, NOW_TS)
    authentication.rate_limit(repo, partner, NOW_TS)
    with pytest.raises(ApiError) as err:
        authentication.rate_limit(repo, partner, NOW_TS)
    assert err.value.code == "rate_limited" and err.value.status == 429
    assert err.value.details["retry_after"] == int(60 - NOW_TS % 60) + 1
    authentication.rate_limit(repo, partner, NOW_TS + 60)  # the next minute has its own slots
    unlimited = repo.add_partner("walk-sz", rate=0)
    for _ in range(5):
        authentication.rate_limit(repo, unlimited, NOW_TS)
    assert not any(slot[0] == "walk-sz" for slot in repo.rate_slots)


def test_a_nonce_is_checked_without_being_used_up_and_consumed_once(repo):
    authentication.check_nonce(repo, "metro-sz", "n1" * 8, NOW)
    assert repo.nonces == {}
    authentication.consume_nonce(repo, "metro-sz", "n1" * 8, NOW)
    assert code_of(authentication.check_nonce, repo, "metro-sz", "n1" * 8, NOW) == "nonce_reused"
    assert code_of(authentication.consume_nonce, repo, "metro-sz", "n1" * 8, NOW) == "nonce_reused"
    authentication.check_nonce(repo, "bus-sz", "n1" * 8, NOW)  # nonces are per partner
    later = NOW + authentication.NONCE_TTL + timedelta(seconds=1)
    authentication.check_nonce(repo, "metro-sz", "n1" * 8, later)  # expired: usable again


# ---- all of it, in order -----------------------------------------------------------------------


def test_a_valid_request_yields_its_caller_and_writes_nothing_until_the_nonce_is_consumed(repo):
    observer, prechecked = Recorder(), []
    caller = authenticate(signed(), repo, precheck=prechecked.append, observer=observer)
    assert (caller.partner_id, caller.key["_id"], caller.now) == ("metro-sz", "metro-k1", NOW)
    assert caller.body == {"records": [{"record_id": "r1"}]} and prechecked == [caller.body]
    assert observer.verified == ["metro-sz"]
    assert repo.nonces == {}
    caller.consume_nonce()
    assert list(repo.nonces) == [f"metro-sz:{caller.auth.nonce}"]
    assert code_of(caller.consume_nonce) == "nonce_reused"


def test_a_replayed_request_is_refused():
    repo = FakeRepository()
    repo.add_partner("metro-sz")
    repo.add_key("metro-k1", "metro-sz", PUBLIC)
    request = signed()
    authenticate(request, repo).consume_nonce()
    assert code_of(authenticate, request, repo) == "nonce_reused"


def test_bad_json_and_batch_shape_are_refused_before_any_lookup_or_signature_math():
    empty = FakeRepository()  # no partner at all: a lookup would answer unknown_partner
    assert code_of(authenticate, signed(body=b"{nope"), empty) == "malformed_json"

    def precheck(document):
        raise ApiError("batch_too_large", "too many")

    assert code_of(authenticate, signed(), empty, precheck=precheck) == "batch_too_large"


def test_the_signature_is_checked_before_the_partner_policy(repo):
    repo.partners["metro-sz"]["status"] = "suspended"
    forged = signed(private=gm.generate_sm2_keypair()[0])
    observer = Recorder()
    assert code_of(authenticate, forged, repo, observer=observer) == "signature_invalid"
    assert observer.verified == []  # nothing about this partner is reported for a forged request
    assert code_of(authenticate, signed(), repo) == "partner_suspended"
    repo.partners["metro-sz"]["status"] = "active"
    assert code_of(authenticate, signed(), repo, kind="bank_app") == "forbidden_for_partner_kind"


def test_an_encrypted_request_is_decrypted_after_verification_and_prechecked(repo):
    prechecked = []
    caller = authenticate(signed(encrypt=True), repo, precheck=prechecked.append)
    assert caller.body == {"records": [{"record_id": "r1"}]} and prechecked == [caller.body]
    tampered = signed(encrypt=True)
    envelope = json.loads(tampered.body)
    envelope["ciphertext"] = envelope["ciphertext"][:-4] + "AAAA"
    resigned = signed(body=json.dumps(envelope).encode())  # validly signed, but not our envelope
    headers = {**resigned.headers, signing.H_ENCRYPTION: signing.ENCRYPTION}
    assert (
        code_of(authenticate, SignedRequest("POST", "/v1/records", headers, resigned.body), repo) == "decryption_failed"
    )


def test_a_get_is_signed_over_the_empty_body_and_carries_no_document(repo):
    caller = authenticate(
        signed("GET", "/v1/consents/cns_1", b"", partner_id="bank-app", key_id="bank-k1", private=PRIVATE),
        _with_bank_key(repo),
        kind="bank_app",
    )
    assert caller.body is None and caller.partner_id == "bank-app"


def test_rate_limit_and_nonce_come_last(repo):
    repo.partners["metro-sz"]["rate_limit_per_minute"] = 1
    authenticate(signed(), repo)
    assert code_of(authenticate, signed(), repo) == "rate_limited"
    assert code_of(authenticate, signed(private=gm.generate_sm2_keypair()[0]), repo) == "signature_invalid"


def _with_bank_key(repo):
    repo.add_key("bank-k1", "bank-app", PUBLIC)
    return repo
