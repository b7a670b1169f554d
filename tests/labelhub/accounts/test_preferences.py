"""Per-user preferences (remapped shortcuts) kept on the server: validated, 400 naming the field, each
user sees only their own."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role

URL = "/api/v1/auth/me/preferences/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,field",
    [
        ({"shortcuts": {"next-task": "Ctrl+Meta+Hyper+g"}}, "shortcuts.next-task"),
        ({"shortcuts": {"next-task": "g", "previous-task": "G"}}, "shortcuts.previous-task"),
        ({"shortcuts": {"Next Task": "g"}}, "shortcuts"),
        ({"shortcuts": ["g"]}, "shortcuts"),
        ({"theme": "dark"}, "theme"),
    ],
)
def test_bad_preferences_are_refused_naming_the_field(org_a, body, field):
    client = org_a.clients[Role.ANNOTATOR]
    out = client.put(URL, body, format="json")
    assert out.status_code == 400, out.json()
    assert out.json()["error"]["field"] == field
    assert client.get(URL).json() == {"shortcuts": {}}


@pytest.mark.django_db
def test_shortcuts_are_kept_per_user(org_a):
    alice, bob = org_a.clients[Role.ANNOTATOR], org_a.clients[Role.REVIEWER]
    saved = alice.put(URL, {"shortcuts": {"next-task": "g", "submit": "Ctrl+s"}}, format="json")
    assert saved.status_code == 200 and saved.json()["shortcuts"] == {"next-task": "g", "submit": "Ctrl+s"}
    assert alice.get(URL).json()["shortcuts"]["next-task"] == "g"
    assert bob.get(URL).json() == {"shortcuts": {}}
    assert alice.put(URL, {"shortcuts": {}}, format="json").json() == {"shortcuts": {}}
