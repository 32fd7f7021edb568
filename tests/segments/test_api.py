"""/api/v1/segments/: CRUD, members and preview, scoped to the workspace."""

import pytest
from django.urls import reverse

from apps.segments import services
from apps.segments.models import Segment
from tests.contacts.factories import ContactFactory

LIST_URL = reverse("api:segment-list")
PREVIEW_URL = reverse("api:segment-preview")
PROS = {"attr": "plan", "op": "eq", "value": "pro"}


@pytest.fixture
def acme_segment(workspace, django_capture_on_commit_callbacks):
    ContactFactory(workspace=workspace, email="ann@acme.test", attributes={"plan": "pro"})
    with django_capture_on_commit_callbacks(execute=True):
        return services.create_segment(workspace, "Pros", PROS)


def test_create_list_update_delete(workspace, api_key_for, django_capture_on_commit_callbacks):
    api = api_key_for(workspace, ["read", "write"])
    ContactFactory(workspace=workspace, attributes={"plan": "pro"})
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(LIST_URL, {"name": "Pros", "rule": PROS}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["slug"], body["rule"]) == ("pros", PROS)
    assert Segment.objects.get().member_count == 1
    detail = reverse("api:segment-detail", args=[body["id"]])
    response = api.patch(
        detail, {"rule": {"attr": "plan", "op": "eq", "value": "free"}}, format="json"
    )
    assert response.status_code == 200
    assert [s["name"] for s in api.get(LIST_URL).json()["results"]] == ["Pros"]
    assert api.delete(detail).status_code == 204
    assert Segment.objects.count() == 0


def test_a_bad_rule_is_refused_with_every_problem_named(workspace, api_key_for):
    api = api_key_for(workspace, ["write"])
    response = api.post(
        LIST_URL,
        {
            "name": "Bad",
            "rule": {
                "any": [
                    {"attr": "plan", "op": "like", "value": "p"},
                    {"event": "x", "count": {"gte": -1}},
                ]
            },
        },
        format="json",
    )
    assert response.status_code == 400
    problems = response.json()["errors"]["rule"]
    assert len(problems) == 2
    assert problems[0].startswith("rule.any[0].op")
    assert Segment.objects.count() == 0


def test_preview_gives_count_and_sample_with_a_read_key(workspace, api_key_for):
    ContactFactory.create_batch(3, workspace=workspace, attributes={"plan": "pro"})
    api = api_key_for(workspace, ["read"])
    response = api.post(PREVIEW_URL, {"rule": PROS}, format="json")
    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert len(response.json()["sample"]) == 3
    assert api.post(PREVIEW_URL, {}, format="json").status_code == 400


def test_ingest_key_cannot_use_segments(workspace, api_key_for):
    api = api_key_for(workspace, ["ingest"])
    assert api.get(LIST_URL).status_code == 403
    assert api.post(PREVIEW_URL, {"rule": PROS}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("method", "name", "body"),
    [
        ("get", "api:segment-detail", None),
        ("patch", "api:segment-detail", {"name": "Mine"}),
        ("delete", "api:segment-detail", None),
        ("get", "api:segment-members", None),
    ],
)
def test_outsider_gets_404_for_another_workspaces_segment(
    method, name, body, acme_segment, other_workspace, api_key_for
):
    api = api_key_for(other_workspace, ["read", "write"])
    response = getattr(api, method)(reverse(name, args=[acme_segment.pk]), body, format="json")
    assert response.status_code == 404
    assert Segment.objects.get(pk=acme_segment.pk).name == "Pros"


def test_outsider_preview_and_list_see_only_their_workspace(
    acme_segment, other_workspace, api_key_for
):
    api = api_key_for(other_workspace, ["read", "write"])
    assert api.get(LIST_URL).json()["results"] == []
    preview = api.post(PREVIEW_URL, {"rule": PROS}, format="json").json()
    assert preview == {"count": 0, "sample": []}
    nested = api.post(PREVIEW_URL, {"rule": {"segment": "pros"}}, format="json")
    assert nested.status_code == 400  # Acme's segment is unknown here


def test_analyst_session_reads_but_cannot_change(acme_segment, analyst, client_for):
    client = client_for(analyst)
    assert client.get(LIST_URL).status_code == 200
    assert (
        client.post(PREVIEW_URL, {"rule": PROS}, content_type="application/json").status_code == 200
    )
    detail = reverse("api:segment-detail", args=[acme_segment.pk])
    assert client.patch(detail, {"name": "X"}, content_type="application/json").status_code == 403
    assert (
        client.post(
            LIST_URL, {"name": "X", "rule": PROS}, content_type="application/json"
        ).status_code
        == 403
    )
    assert Segment.objects.get().name == "Pros"
