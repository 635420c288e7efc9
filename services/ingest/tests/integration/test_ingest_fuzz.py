"""Bounded property-based fuzzing (hypothesis): correctly *signed* requests with arbitrary
bodies, records, headers and admin payloads never produce a 5xx, and every answer has a code
or per-record results."""

import json
import string

from hypothesis import HealthCheck, given, settings, strategies as st

from ingest import signing
from ingest.validation import COMPUTED_FIELDS, SCENARIOS
from ingest_testkit import ADMIN_TOKEN, metro

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
CUSTOMER = "6222000011112222"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["12.4", "-1", "NaN", "1e5", "0", "100.0000001", "Infinity", "\u0000"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
field_names = sorted({f for fields in SCENARIOS.values() for f in fields} | COMPUTED_FIELDS)
activities = st.dictionaries(st.one_of(st.sampled_from(field_names), st.text(max_size=10)), json_values, max_size=6)
records = st.fixed_dictionaries(
    {
        "record_id": st.one_of(
            st.text(alphabet=string.ascii_letters + string.digits + "-:._ ", max_size=70), json_values
        ),
        "customer_ref": st.one_of(st.just(CUSTOMER), st.text(max_size=40), json_values),
        "scenario": st.one_of(st.sampled_from(sorted(SCENARIOS)), st.text(max_size=20), json_values),
        "occurred_at": st.one_of(
            st.just(metro("x")["occurred_at"]),
            st.text(max_size=30),
            json_values,
            st.datetimes().map(lambda d: d.isoformat() + "Z"),
        ),
        "activity": st.one_of(activities, json_values),
    },
    optional={"reduction_g": json_values, "extra": json_values},
)


def assert_answered(response):
    assert response.status_code < 500, response.get_json()
    body = response.get_json()
    assert "results" in body or body.get("code"), body
    assert response.headers["X-Trace-Id"]


def test_fuzzed_signed_batches_never_fail_with_5xx(fuzz_scene):
    platform, partner, _ = fuzz_scene

    @FUZZ
    @given(st.lists(records, min_size=1, max_size=4))
    def run(batch):
        body = json.dumps({"records": batch}, allow_nan=True).encode()
        assert_answered(partner.send("POST", "/v1/records", raw=body))

    run()


def test_fuzzed_signed_raw_bodies_never_fail_with_5xx(fuzz_scene):
    _, partner, bank = fuzz_scene

    @FUZZ
    @given(
        st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
        st.sampled_from(["/v1/records", "/v1/consents", "/v1/deletion-requests", "/v1/consents/cns_x/revoke"]),
    )
    def run(body, path):
        signer = partner if path == "/v1/records" else bank
        assert_answered(signer.send("POST", path, raw=body))

    run()


def test_fuzzed_auth_headers_never_fail_with_5xx(fuzz_scene):
    platform, partner, _ = fuzz_scene
    header_text = st.text(alphabet=string.printable.strip() + " ", max_size=140)
    names = [
        signing.H_PARTNER,
        signing.H_KEY_ID,
        signing.H_TIMESTAMP,
        signing.H_NONCE,
        signing.H_SIGNATURE,
        signing.H_ENCRYPTION,
        "Content-Type",
    ]

    @FUZZ
    @given(st.dictionaries(st.sampled_from(names), header_text, max_size=4))
    def run(overrides):
        mutate = lambda headers, body: ({**headers, **overrides}, body)  # noqa: E731
        assert_answered(partner.send("POST", "/v1/records", {"records": [metro("f1", CUSTOMER)]}, mutate=mutate))

    run()


def test_fuzzed_admin_payloads_never_fail_with_5xx(fuzz_scene):
    platform, _, _ = fuzz_scene
    partner_like = st.fixed_dictionaries(
        {},
        optional={
            "partner_id": st.one_of(st.text(max_size=20), json_values),
            "name": json_values,
            "kind": json_values,
            "scenarios": json_values,
            "rate_limit_per_minute": json_values,
            "keys": st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "key_id": json_values,
                            "public_key": st.one_of(st.text(alphabet="0123456789abcdef", max_size=130), json_values),
                        }
                    ),
                    max_size=2,
                ),
            ),
        },
    )

    @FUZZ
    @given(
        st.one_of(partner_like, json_values),
        st.sampled_from(["/admin/v1/partners", "/admin/v1/partners/fuzz-metro/keys"]),
    )
    def run(document, path):
        response = platform.http.post(
            path,
            data=json.dumps(document),
            content_type="application/json",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert_answered(response)

    run()
