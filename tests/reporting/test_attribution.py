"""Conversions credited to the messages that touched the contact before them, under each
attribution model, with exact shares."""

import datetime as dt
import math
from decimal import Decimal

import pytest

from apps.channels.choices import ChannelType, MessageStatus
from apps.channels.models import Message
from apps.contacts.models import Event
from apps.reporting.models import AttributionDaily, AttributionSettings
from apps.reporting.services.rollups import refresh_rollups
from tests.channels.factories import ChannelFactory, email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

BOUGHT = dt.datetime(2026, 5, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def shop(workspace):
    """Acme (in Copenhagen) with an email and an SMS channel; shop.sent(...) and
    shop.event(...) write its history."""
    version = email_template(workspace).versions.get()
    channels = {
        "email": ChannelFactory(workspace=workspace, type=ChannelType.EMAIL),
        "sms": ChannelFactory(workspace=workspace, type=ChannelType.SMS, provider="http_json"),
    }

    def sent(contact, channel, hours_before, journey_id=None, node_id=""):
        return Message.objects.create(
            workspace=workspace, contact=contact, channel=channels[channel],
            template_version=version, idempotency_key=f"{contact.pk}-{channel}-{hours_before}",
            status=MessageStatus.SENT, sent_at=BOUGHT - dt.timedelta(hours=hours_before),
            journey_id=journey_id, node_id=node_id,
        )  # fmt: skip

    def event(contact, name, properties, at=BOUGHT):
        return Event.objects.create(workspace=workspace, contact=contact, name=name,
                                    properties=properties, occurred_at=at)  # fmt: skip

    workspace.sent, workspace.event = sent, event
    return workspace


def credits(workspace, model):
    return {
        (row.channel, row.journey_id, row.node_id): (round(row.conversions, 4), row.revenue)
        for row in AttributionDaily.objects.filter(workspace=workspace, model=model)
    }


def test_each_model_shares_one_purchase_between_the_messages_before_it(shop):
    ann = ContactFactory(workspace=shop)
    shop.sent(ann, "email", 72, journey_id=5, node_id="hello")  # 3 days before
    shop.sent(ann, "sms", 24)  # 1 day before
    shop.sent(ann, "email", 240)  # 10 days before: outside the 7-day window
    shop.sent(ContactFactory(workspace=shop), "email", 1)  # someone else's message
    shop.event(ann, "purchase", {"amount": 100})
    shop.event(ann, "page_viewed", {"amount": 5})  # not a conversion

    refresh_rollups()

    email, sms = ("email", 5, "hello"), ("sms", 0, "")
    assert credits(shop, "first_touch") == {email: (1.0, Decimal("100.0000"))}
    assert credits(shop, "last_touch") == {sms: (1.0, Decimal("100.0000"))}
    assert credits(shop, "linear") == {
        email: (0.5, Decimal("50.0000")),
        sms: (0.5, Decimal("50.0000")),
    }
    # Half-life 48 h: weights 0.5^(72/48) and 0.5^(24/48), i.e. 1/3 and 2/3 of the credit.
    decay = credits(shop, "time_decay")
    assert decay[email][0] == round(1 / 3, 4) and decay[sms][0] == round(2 / 3, 4)
    assert math.isclose(decay[email][1] + decay[sms][1], 100, abs_tol=0.001)
    assert set(AttributionDaily.objects.values_list("day", flat=True)) == {dt.date(2026, 5, 10)}


def test_a_conversion_no_message_touched_is_direct(shop):
    bo = ContactFactory(workspace=shop)
    shop.event(bo, "purchase", {"revenue": 40})
    refresh_rollups()
    for model in ("first_touch", "last_touch", "linear", "time_decay"):
        assert credits(shop, model) == {("", 0, ""): (1.0, Decimal("40.0000"))}


def test_the_workspace_chooses_its_conversion_events_and_window(shop):
    AttributionSettings.objects.create(
        workspace=shop, conversion_events=["signed_up"], lookback_days=30, half_life_hours=24
    )
    cy = ContactFactory(workspace=shop)
    shop.sent(cy, "email", 240)  # 10 days before: inside a 30-day window
    shop.event(cy, "signed_up", {})
    shop.event(cy, "purchase", {"amount": 10})  # not a conversion here
    refresh_rollups()
    assert credits(shop, "linear") == {("email", 0, ""): (1.0, Decimal("0.0000"))}
    assert AttributionDaily.objects.filter(workspace=shop).count() == 4  # one row per model


def test_attribution_page_puts_the_models_side_by_side(shop, owner, client_for):
    from django.urls import reverse

    ann = ContactFactory(workspace=shop)
    shop.sent(ann, "email", 72, journey_id=None, node_id="")
    shop.sent(ann, "sms", 24)
    shop.event(ann, "purchase", {"amount": 100})
    shop.event(ContactFactory(workspace=shop), "purchase", {"amount": 30})
    refresh_rollups()
    client = client_for(owner)

    response = client.get(reverse("reporting:attribution"), {"days": 365})
    rows = {row["key"]: row for row in response.context["data"]["rows"]}
    assert rows["email"]["first_touch"] == {"conversions": 1.0, "revenue": 100.0}
    assert rows["email"]["last_touch"] == {"conversions": 0, "revenue": 0.0}
    assert rows["sms"]["linear"] == {"conversions": 0.5, "revenue": 50.0}
    assert rows[""]["last_touch"] == {"conversions": 1.0, "revenue": 30.0}
    page = response.content.decode()
    assert "Direct (no message)" in page and 'id="attribution-data"' in page

    export = client.get(reverse("reporting:attribution_export"), {"days": 365})
    lines = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("channel,first_touch_conversions,first_touch_revenue")
    assert any(line.startswith("SMS,0,0.0,1.0,100.0,0.5,50.0") for line in lines)

    bad = client.get(reverse("reporting:attribution"), {"by": "weather"})
    assert "by channel, journey or message" in bad.content.decode()
    assert client.get(reverse("reporting:attribution_export"), {"by": "x"}).status_code == 400


def test_attribution_by_journey_step_names_the_journey(shop, owner, client_for):
    from django.urls import reverse

    from apps.journeys.models import Journey

    journey = Journey.objects.create(workspace=shop, name="Win-back", draft={})
    bo = ContactFactory(workspace=shop)
    shop.sent(bo, "email", 5, journey_id=journey.pk, node_id="come-back")
    shop.event(bo, "purchase", {"revenue": 80})
    refresh_rollups()
    data = (
        client_for(owner)
        .get(reverse("reporting:attribution"), {"days": 365, "by": "message"})
        .context["data"]
    )
    assert [row["label"] for row in data["rows"]] == ["Win-back · come-back (Email)"]
    assert data["rows"][0]["time_decay"] == {"conversions": 1.0, "revenue": 80.0}


def test_outsiders_see_no_attribution_of_another_workspace(shop, outsider, client_for, api_key_for):
    from django.urls import reverse

    shop.event(ContactFactory(workspace=shop), "purchase", {"amount": 999})
    refresh_rollups()
    client = client_for(outsider)
    assert client.get(reverse("reporting:attribution"), {"days": 365}).context["data"]["rows"] == []
    export = client.get(reverse("reporting:attribution_export"), {"days": 365})
    assert b"999" not in b"".join(export.streaming_content)
    api = api_key_for(outsider.workspaces.get(), ["read"])
    assert api.get(reverse("api:report-attribution"), {"days": 365}).json()["rows"] == []


def test_attribution_api_answers_the_pages_numbers(shop, api_key_for):
    from django.urls import reverse

    cy = ContactFactory(workspace=shop)
    shop.sent(cy, "sms", 2)
    shop.event(cy, "purchase", {"amount": 12})
    refresh_rollups()
    api = api_key_for(shop, ["read"])
    body = api.get(reverse("api:report-attribution"), {"days": 365, "by": "channel"}).json()
    assert body["models"] == ["first_touch", "last_touch", "linear", "time_decay"]
    assert body["rows"][0]["key"] == "sms"
    assert body["rows"][0]["last_touch"] == {"conversions": 1.0, "revenue": 12.0}
    bad = api.get(reverse("api:report-attribution"), {"by": "weather"})
    assert bad.status_code == 400 and "by" in bad.json()["errors"]
