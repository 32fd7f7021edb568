"""The verifier docs/api.md gives partners accepts Orchestra's real requests, and refuses a
tampered body, another secret and an old timestamp."""

import re
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from apps.webhooks.services import subscriptions


def documented_verify():
    text = (Path(settings.BASE_DIR) / "docs" / "api.md").read_text()
    section = text.split("## Webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    namespace = {}
    exec(code, namespace)  # noqa: S102 (our own documentation)
    return namespace["verify"]


def test_the_documented_verifier_accepts_real_requests_only(subscribe, receiver):
    verify = documented_verify()
    subscription = subscribe()
    subscriptions.send_ping(subscription)
    [request] = receiver.requests
    headers = {
        name: request.headers[name.lower()]
        for name in ("X-Orchestra-Timestamp", "X-Orchestra-Signature")
    }

    assert verify(receiver.secret, headers, request.body)
    assert not verify(receiver.secret, headers, request.body.replace(b"ping", b"pong"))
    assert not verify("whsec_other", headers, request.body)
    old = {**headers, "X-Orchestra-Timestamp": str(int(headers["X-Orchestra-Timestamp"]) - 600)}
    assert not verify(receiver.secret, old, request.body)


def test_the_admin_never_shows_the_secret(admin_client, subscribe):
    subscription = subscribe()
    page = admin_client.get(
        reverse("admin:webhooks_webhooksubscription_change", args=[subscription.pk])
    )
    assert page.status_code == 200
    assert subscription.secret not in page.content.decode()
    deliveries = admin_client.get(reverse("admin:webhooks_webhookdelivery_changelist"))
    assert deliveries.status_code == 200
