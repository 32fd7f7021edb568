"""The signature receivers check: `X-Orchestra-Signature: v1=<hex>`, where the hex is the
HMAC-SHA256 of "<X-Orchestra-Timestamp>.<raw body>" keyed with the subscription's secret."""

import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def is_valid(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (the tests' receiver uses it; docs/api.md shows the same)."""
    try:
        expected = signature(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, header)
