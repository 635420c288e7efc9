"""The partner SDK's requests, judged by the server's own authentication steps (no server).

A client set up to encrypt (platform_public_key) used to encrypt a GET's empty body too; the
server refuses a GET that carries a body (413 body_too_large), so an encrypting bank app could
not read a consent. Only bodies are encrypted now.
"""

import io
from types import SimpleNamespace
from urllib.parse import urlsplit

from carbon_common import gm

from ingest import authentication, signing
from ingest.errors import ApiError
from ingest.sdk import IngestClient

from ingest_fakes import FakeRepository

PRIVATE, PUBLIC = gm.generate_sm2_keypair()
PLATFORM_PRIVATE, PLATFORM_PUBLIC = gm.generate_sm2_keypair()
SETTINGS = SimpleNamespace(max_body_bytes=1 << 20, platform_private_key=PLATFORM_PRIVATE)


def signed_target(url: str) -> str:
    """What the Flask adapter hands to authentication: the path and the query as sent."""
    parts = urlsplit(url)
    return signing.request_target(parts.path, parts.query)


class ServerSteps:
    """A requests.Session stand-in that hands each request to ingest's authentication steps, as
    the Flask adapter (ingest.views.auth.signed_request) does, and answers with the outcome."""

    def __init__(self, repo):
        self.repo, self.seen = repo, []

    def request(self, method, url, data=b"", headers=None, timeout=None):
        headers, body = dict(headers or {}), data or b""
        self.seen.append((method, headers, body))
        try:
            if method != "GET":
                authentication.check_content_type(headers.get("Content-Type", ""))
            body = authentication.read_body(
                len(body), io.BytesIO(body), authentication.body_limit(method, SETTINGS.max_body_bytes)
            )
            caller = authentication.authenticate(
                authentication.SignedRequest(method, signed_target(url), headers, body),
                "bank_app",
                repo=self.repo,
                settings=SETTINGS,
                now_ts=float(headers[signing.H_TIMESTAMP]),
            )
        except ApiError as exc:
            return SimpleNamespace(status_code=exc.status, code=exc.code, document=None)
        return SimpleNamespace(status_code=200, code=None, document=caller.body)


def bank_client():
    repo = FakeRepository()
    repo.add_partner("bank-app", kind="bank_app", scenarios=())
    repo.add_key("bank-k1", "bank-app", PUBLIC)
    server = ServerSteps(repo)
    client = IngestClient(
        "http://ingest.test", "bank-app", "bank-k1", PRIVATE, platform_public_key=PLATFORM_PUBLIC, session=server
    )
    return client, server


def test_an_encrypting_client_sends_a_get_with_no_body_that_the_server_accepts():
    client, server = bank_client()
    response = client.get_consent("cns_0123456789abcdef")
    method, headers, body = server.seen[-1]
    assert (method, body) == ("GET", b"")
    assert signing.H_ENCRYPTION not in headers and "Content-Type" not in headers
    assert (response.status_code, response.code) == (200, None)


def test_an_encrypting_client_still_encrypts_every_body():
    client, server = bank_client()
    response = client.revoke_consent("cns_0123456789abcdef")
    method, headers, body = server.seen[-1]
    assert headers[signing.H_ENCRYPTION] == signing.ENCRYPTION and b"wrapped_key" in body
    assert (response.status_code, response.document) == (200, {})  # decrypted by the server's step
    response = client.request_deletion("6222000011112222")
    assert b"6222000011112222" not in server.seen[-1][2]  # the customer number never travels in clear
    assert response.document == {"customer_number": "6222000011112222"}


def test_the_server_refuses_a_get_that_carries_an_encrypted_body():
    """What the SDK did before its fix: the step that the fixed client now satisfies."""
    client, server = bank_client()
    headers, body = signing.sign_request(
        PRIVATE, "bank-app", "bank-k1", "GET", "/v1/consents/cns_1", b"", platform_public_hex=PLATFORM_PUBLIC
    )
    response = server.request("GET", "http://ingest.test/v1/consents/cns_1", data=body, headers=headers)
    assert (response.status_code, response.code) == (413, "body_too_large")


def test_a_consent_listing_signs_its_query_string():
    client, server = bank_client()
    response = client.list_consents("a" * 64, page_size=5, page_token="cns_" + "0" * 32)
    assert (response.status_code, response.code) == (200, None)
    url = "http://ingest.test/v1/consents?user_pid=" + "b" * 64 + "&page_size=5"  # another customer
    method, headers, body = server.seen[-1]
    answer = server.request(method, url, body, headers)
    assert (answer.status_code, answer.code) == (401, "signature_invalid")
