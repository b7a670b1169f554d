"""Per-user preferences of the app (GET/PUT auth/me/preferences/): remapped keyboard shortcuts.

The app's keymap (labelhub/app/static/app/keymap.js) is the one list of commands and default keys; the
server stores only a person's overrides, {command id: key combination}, and checks their shape: ids
are short lowercase names, a key is a combination such as "f", "Shift+h", "Ctrl+Enter" or "F2", and no
two commands share a key (a 400 names the field, e.g. `shortcuts.next-task`)."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from labelhub.core.errors import DomainError

from .models import UserPreferences

COMMAND_ID = re.compile(r"^[a-z][a-z0-9-]{0,39}\Z")
KEY = re.compile(
    r"^(?:(?:Ctrl|Alt|Shift)\+){0,3}(?:[!-~]|F[1-9]|F1[0-2]|Enter|Escape|Tab|Delete|Backspace|"
    r"ArrowUp|ArrowDown|ArrowLeft|ArrowRight|Space|Home|End|PageUp|PageDown)\Z"
)
MAX_SHORTCUTS = 100


def preferences_get(*, user) -> dict:
    prefs = UserPreferences.objects.filter(user=user).first()
    return {"shortcuts": dict(prefs.shortcuts) if prefs else {}}


def shortcuts_clean(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise DomainError("shortcuts is an object {command: key}.", field="shortcuts")
    if len(value) > MAX_SHORTCUTS:
        raise DomainError(f"At most {MAX_SHORTCUTS} remapped shortcuts.", field="shortcuts")
    seen: dict[str, str] = {}
    for command, key in value.items():
        where = f"shortcuts.{command}"
        if not COMMAND_ID.match(str(command)):
            raise DomainError("A command is a short lowercase name such as next-task.", field="shortcuts")
        if not isinstance(key, str) or not KEY.match(key):
            raise DomainError(
                "A key is one key with optional Ctrl+, Alt+, Shift+ (for example f, Shift+h, Ctrl+Enter, F2).",
                field=where,
            )
        if key.lower() in seen:
            raise DomainError(
                f"{key} is already the key of {seen[key.lower()]}.", field=where, code="key_taken"
            )
        seen[key.lower()] = command
    return dict(value)


@transaction.atomic
def preferences_set(*, user, data: Any) -> dict:
    if not isinstance(data, dict):
        raise DomainError("Preferences are an object.", field="preferences")
    unknown = sorted(set(data) - {"shortcuts"})
    if unknown:
        raise DomainError(f"Unknown preferences: {unknown}.", field=unknown[0])
    prefs, _ = UserPreferences.objects.select_for_update().get_or_create(user=user)
    if "shortcuts" in data:
        prefs.shortcuts = shortcuts_clean(data["shortcuts"])
    prefs.save()
    return preferences_get(user=user)
