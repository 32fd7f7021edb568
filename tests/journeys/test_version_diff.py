"""Version history: what changed between two graphs, the versions page, a version opened
read-only on the canvas with the difference drawn, and restoring a version as the draft."""

import copy
import json

import pytest
from django.urls import reverse

from apps.journeys.models import Journey
from apps.journeys.services import gallery, journeys
from apps.journeys.services.versions import graph_diff

OLD = {
    "name": "Old",
    "entry": {"type": "event", "event": "signed_up"},
    "start": "a",
    "nodes": [
        {"id": "a", "type": "send", "channel": "email", "template": "welcome-1"},
        {"id": "b", "type": "wait", "duration": "P1D"},
        {"id": "c", "type": "send", "channel": "email", "template": "welcome-2"},
        {"id": "d", "type": "exit"},
    ],
    "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "d"}],
    "layout": {"a": [0, 0], "b": [200, 0]},
}


def test_graph_diff_names_added_removed_and_changed_nodes():
    new = copy.deepcopy(OLD)
    new["nodes"][1]["duration"] = "P2D"  # b: other settings
    new["nodes"] = [n for n in new["nodes"] if n["id"] != "c"]  # c: removed
    new["nodes"].append({"id": "e", "type": "goal", "event": "purchase"})  # e: added
    new["edges"] = [{"from": "a", "to": "b"}, {"from": "b", "to": "d"}]  # b: other edge too
    new["layout"] = {"a": [50, 50]}  # moving a node is no change

    diff = graph_diff(OLD, new)

    assert (diff.added, diff.removed, diff.changed) == (["e"], ["c"], ["b"])


def test_a_node_whose_edges_changed_is_changed():
    new = copy.deepcopy(OLD)
    new["edges"][2] = {"from": "c", "to": "a"}
    assert graph_diff(OLD, new).as_dict() == {"added": [], "removed": [], "changed": ["c"]}
    assert not graph_diff(OLD, copy.deepcopy(OLD))


@pytest.fixture
def two_versions(workspace, owner):
    """The welcome series published twice: version 2 drops the tips email and waits 3 days."""
    journey = gallery.create_from_starter(workspace, "welcome", owner)
    journeys.publish(journey, owner)
    graph = copy.deepcopy(journey.draft)
    graph["nodes"] = [n for n in graph["nodes"] if n["id"] != "tips"]
    graph["edges"] = [e for e in graph["edges"] if "tips" not in (e["from"], e["to"])]
    graph["edges"].append({"from": "wait_2_days", "to": "wait_purchase"})
    next(n for n in graph["nodes"] if n["id"] == "wait_2_days")["duration"] = "P3D"
    journeys.update_draft(journey, graph)
    journeys.publish(journey, owner)
    journey.refresh_from_db()
    return journey


def data_of(response) -> dict:
    content = response.content.decode()
    start = content.index('<script id="journey-data" type="application/json">')
    start = content.index(">", start) + 1
    return json.loads(content[start : content.index("</script>", start)])


def test_versions_page_lists_each_version_with_its_changes(two_versions, marketer, client_for):
    response = client_for(marketer).get(reverse("journeys:versions", args=[two_versions.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    second = content[content.index('id="version-2"') : content.index('id="version-1"')]
    assert "owner@acme.test" in second
    assert "0 steps added, 1 removed, 1 changed" in second
    assert reverse("journeys:version", args=[two_versions.pk, 2]) in second
    assert reverse("journeys:restore", args=[two_versions.pk, 2]) in second
    assert '<option value="draft">the draft</option>' in second
    assert '<option value="1">version 1</option>' in second
    assert "First version" in content[content.index('id="version-1"') :]
    assert "The draft is the same as version 2." in content


def test_version_opens_read_only_on_the_canvas(two_versions, owner, client_for):
    response = client_for(owner).get(reverse("journeys:version", args=[two_versions.pk, 1]))

    data = data_of(response)
    content = response.content.decode()
    assert data["readonly"] is True and data["diff"] is None
    assert data["graph"] == two_versions.versions.get(number=1).graph
    assert 'id="journey-save"' not in content and 'id="journey-publish"' not in content
    assert "You are looking at version 1" in content


def test_comparing_a_version_with_another_draws_the_difference(two_versions, owner, client_for):
    url = reverse("journeys:version", args=[two_versions.pk, 1])

    data = data_of(client_for(owner).get(url, {"compare": "2"}))

    assert data["diff"] == {
        "added": ["tips"],
        "removed": [],
        "changed": ["wait_2_days"],
        "against": "version 2",
    }
    assert data["removed_nodes"] == []


def test_comparing_with_the_draft_draws_removed_nodes_faded(two_versions, owner, client_for):
    draft = copy.deepcopy(two_versions.draft)
    extra = {"id": "extra", "type": "update_attribute", "attribute": "stage", "value": "x"}
    draft["nodes"].append(extra)
    draft["edges"] = [e for e in draft["edges"] if e["from"] != "offer"]
    draft["edges"] += [{"from": "offer", "to": "extra"}, {"from": "extra", "to": "done"}]
    journeys.update_draft(two_versions, draft)
    url = reverse("journeys:version", args=[two_versions.pk, 2])

    response = client_for(owner).get(url, {"compare": "draft"})

    data = data_of(response)
    assert data["diff"] == {
        "added": [],
        "removed": ["extra"],
        "changed": ["offer"],
        "against": "the draft",
    }
    assert data["removed_nodes"] == [extra]
    assert "Version 2 compared with the draft" in response.content.decode()


def test_comparing_with_no_such_version_says_so(two_versions, owner, client_for):
    url = reverse("journeys:version", args=[two_versions.pk, 1])
    response = client_for(owner).get(url, {"compare": "9"}, follow=True)
    assert data_of(response)["diff"] is None
    assert "There is no version 9 to compare with." in response.content.decode()


def test_unknown_version_is_404(two_versions, owner, client_for):
    client = client_for(owner)
    assert client.get(reverse("journeys:version", args=[two_versions.pk, 3])).status_code == 404
    assert client.post(reverse("journeys:restore", args=[two_versions.pk, 3])).status_code == 404


def test_restore_asks_then_makes_the_version_the_draft(two_versions, marketer, client_for):
    client = client_for(marketer)
    url = reverse("journeys:restore", args=[two_versions.pk, 1])

    confirm = client.get(url).content.decode()
    assert "Restore version 1 as the draft?" in confirm
    assert "1 step added, 0 removed, 1 changed" in confirm
    assert Journey.objects.get(pk=two_versions.pk).draft == two_versions.draft

    response = client.post(url, follow=True)

    assert response.redirect_chain[-1][0] == reverse("journeys:builder", args=[two_versions.pk])
    assert "Version 1 is the draft again." in response.content.decode()
    restored = Journey.objects.get(pk=two_versions.pk)
    assert restored.draft == two_versions.versions.get(number=1).graph
    assert restored.live_version.number == 2  # nothing changes for contacts until published


def test_restore_into_an_archived_journey_is_refused(two_versions, owner, client_for):
    journeys.archive(two_versions)
    client = client_for(owner)
    response = client.post(reverse("journeys:restore", args=[two_versions.pk, 1]), follow=True)
    assert "An archived journey cannot be changed." in response.content.decode()
    assert Journey.objects.get(pk=two_versions.pk).draft == two_versions.draft
