"""GET /api/v1/personalize/<slot>/ and POST …/click/: the browser's view of a slot."""

import base64
import urllib.request

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts import services as accounts
from apps.contacts.models import Event
from apps.personalization.choices import SLOT_CLICKED, SLOT_IMPRESSION
from tests.contacts.factories import ContactFactory
from tests.personalization.factories import ContentSlotFactory, VariantFactory

URL = reverse("api:personalize", args=["home-hero"])
CLICK_URL = reverse("api:personalize-click", args=["home-hero"])


@pytest.fixture
def hero(workspace):
    slot = ContentSlotFactory(workspace=workspace, key="home-hero",
                              default_content={"html": "<h2>Hello</h2>"})  # fmt: skip
    VariantFactory(slot=slot, name="pro", priority=10,
                   rule={"attr": "plan", "op": "eq", "value": "pro"})  # fmt: skip
    VariantFactory(slot=slot, name="spring", priority=20,
                   context_match={"utm_campaign": "spring*"})  # fmt: skip
    return slot


@pytest.fixture
def ann(workspace):
    return ContactFactory(workspace=workspace, external_id="ann", attributes={"plan": "pro"})


@pytest.fixture
def write_key(workspace):
    return accounts.create_api_key(workspace, "site", ["ingest"])[1]


def events(name):
    return list(Event.objects.filter(name=name).values_list("contact_id", "properties"))


def test_decision_with_write_key_in_the_query_records_an_impression(hero, ann, write_key):
    response = APIClient().get(URL, {"contact": "ann", "writeKey": write_key, "page": "/"})
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("slot", "variant", "content")} == {
        "slot": "home-hero", "variant": "pro", "content": {"html": "<p>pro</p>"},
    }  # fmt: skip
    assert body["impression_id"]
    [(contact_id, properties)] = events(SLOT_IMPRESSION)
    assert contact_id == ann.pk
    assert (properties["slot"], properties["variant"]) == ("home-hero", "pro")


def test_context_parameters_choose_the_variant(hero, ann, write_key):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    body = api.get(URL, {"contact": "ann", "utm_campaign": "spring-sale"}).json()
    assert body["variant"] == "spring"


def test_unknown_contact_gets_the_default_and_no_event(hero, write_key):
    body = APIClient().get(URL, {"contact": "ghost", "writeKey": write_key}).json()
    assert (body["variant"], body["content"], body["impression_id"]) == (
        "default", {"html": "<h2>Hello</h2>"}, None,
    )  # fmt: skip
    assert Event.objects.count() == 0


def test_unknown_slot_is_404_with_a_message(hero, write_key):
    url = reverse("api:personalize", args=["nope"])
    response = APIClient().get(url, {"contact": "ann", "writeKey": write_key})
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]
    assert response["Access-Control-Allow-Origin"] == "*"


def test_cors_headers_and_preflight(hero, ann, write_key):
    api = APIClient()
    preflight = api.options(URL, HTTP_ORIGIN="https://shop.example",
                            HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")  # fmt: skip
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight["Access-Control-Allow-Methods"]
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    response = api.get(URL, {"contact": "ann", "writeKey": write_key},
                       HTTP_ORIGIN="https://shop.example")  # fmt: skip
    assert response["Access-Control-Allow-Origin"] == "*"
    assert api.options(CLICK_URL).status_code == 204


def test_click_from_a_text_plain_beacon_records_slot_clicked(hero, ann, write_key):
    api = APIClient()
    impression = api.get(URL, {"contact": "ann", "writeKey": write_key}).json()["impression_id"]
    body = f'{{"writeKey": "{write_key}", "impression_id": "{impression}"}}'
    response = api.generic("POST", CLICK_URL, body, content_type="text/plain")
    assert response.status_code == 202
    assert response["Access-Control-Allow-Origin"] == "*"
    [(contact_id, properties)] = events(SLOT_CLICKED)
    [(_c, shown)] = events(SLOT_IMPRESSION)
    assert contact_id == ann.pk
    assert properties == {"slot": "home-hero", "variant": "pro",
                          "impression": shown["impression"]}  # fmt: skip


def test_click_by_contact_and_variant_with_basic_auth(hero, ann, write_key):
    api = APIClient()
    basic = base64.b64encode(f"{write_key}:".encode()).decode()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {basic}")
    response = api.post(CLICK_URL, {"contact": "ann", "variant": "pro"}, format="json")
    assert response.status_code == 202
    assert [p["variant"] for _c, p in events(SLOT_CLICKED)] == ["pro"]
    unknown = api.post(CLICK_URL, {"contact": "ann", "variant": "nope"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == {"variant": ["Unknown variant."]}
    assert len(events(SLOT_CLICKED)) == 1


def test_forged_or_foreign_impressions_are_refused(hero, ann, write_key, other_workspace):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    response = api.post(CLICK_URL, {"impression_id": "forged"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"impression_id": ["Unknown impression."]}
    # An impression of this slot replayed against another slot is refused too.
    impression = api.get(URL, {"contact": "ann"}).json()["impression_id"]
    ContentSlotFactory(workspace=hero.workspace, key="footer")
    footer_click = reverse("api:personalize-click", args=["footer"])
    assert api.post(footer_click, {"impression_id": impression}, format="json").status_code == 400
    assert api.post(CLICK_URL, {}, format="json").status_code == 400
    assert events(SLOT_CLICKED) == []


def test_unknown_contact_click_is_404(hero, write_key):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    response = api.post(CLICK_URL, {"contact": "ghost", "variant": "pro"}, format="json")
    assert response.status_code == 404
    assert events(SLOT_CLICKED) == []


def test_outsider_key_gets_404_for_this_workspaces_slot(hero, ann, other_workspace):
    outsider_key = accounts.create_api_key(other_workspace, "theirs", ["ingest"])[1]
    response = APIClient().get(URL, {"contact": "ann", "writeKey": outsider_key})
    assert response.status_code == 404
    click = APIClient().post(CLICK_URL, {"writeKey": outsider_key, "contact": "ann",
                                         "variant": "pro"}, format="json")  # fmt: skip
    assert click.status_code == 404
    assert Event.objects.count() == 0


def test_keys_need_the_ingest_scope_and_sessions_do_not_count(
    hero, ann, workspace, owner, client_for
):
    read_key = accounts.create_api_key(workspace, "reader", ["read"])[1]
    assert APIClient().get(URL, {"contact": "ann", "writeKey": read_key}).status_code == 403
    assert APIClient().get(URL, {"contact": "ann", "writeKey": "orc_wrong"}).status_code == 401
    assert APIClient().get(URL, {"contact": "ann"}).status_code in (401, 403)
    assert client_for(owner).get(URL, {"contact": "ann"}).status_code in (401, 403)
    assert Event.objects.count() == 0


def test_the_script_is_served_from_static(live_server):
    assert finders.find("js/orchestra-personalize.js") is not None
    url = live_server.url + static("js/orchestra-personalize.js")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own server)
        assert response.status == 200
        text = response.read().decode()
    assert "OrchestraPersonalize" in text and "data-orchestra-slot" in text
