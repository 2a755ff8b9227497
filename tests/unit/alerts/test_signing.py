"""Standard Webhooks signatures: the spec's own example, rotation, tampering."""

from __future__ import annotations

import pytest

from alerts.signing import SignatureError, headers, new_secret, sign, verify

# The example of the Standard Webhooks specification (spec/standard-webhooks.md, "Verifying").
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (the spec's published example)
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_spec_example_signs_as_published() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIG


def test_rotation_sends_one_signature_per_secret_and_either_verifies() -> None:
    old, new = new_secret(), new_secret()
    h = headers((new, old), "evt_1", 1000, b"{}")
    assert len(h["webhook-signature"].split()) == 2
    verify(old, h, b"{}", 1000)
    verify(new, h, b"{}", 1000)


def test_tampering_and_stale_messages_fail() -> None:
    s = new_secret()
    h = headers((s,), "evt_1", 1000, b"{}")
    with pytest.raises(SignatureError, match="no signature"):
        verify(s, h, b'{"x":1}', 1000)
    with pytest.raises(SignatureError, match="timestamp"):
        verify(s, h, b"{}", 2000)
    with pytest.raises(SignatureError, match="whsec_"):
        sign("nope", "a", 1, b"")
