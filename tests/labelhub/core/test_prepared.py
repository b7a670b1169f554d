"""Prepared querysets (labelhub/core/prepared.py): the same results as the queryset, the SQL compiled once,
and the ORM's own path where a value cannot be swapped in."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from labelhub.accounts.models import Membership, Organization
from labelhub.core.prepared import Prepared

pytestmark = pytest.mark.django_db

USER, ORG = -(2**62) - 101, -(2**62) - 102


def test_models_with_related_objects_and_values_as_the_queryset_gives_them(org_a, org_b):
    members = Prepared(
        lambda org: Membership.objects.filter(organization_id=org).select_related("user", "organization"), ORG
    )
    roles = Prepared(
        lambda user, org: Membership.objects.filter(user_id=user, organization_id=org).values_list(
            "role", flat=True
        ),
        USER,
        ORG,
    )
    for org in (org_a, org_b):
        expected = list(Membership.objects.filter(organization=org.organization).select_related("user"))
        got = members(org.organization.pk)
        assert [(m.pk, m.role, m.user.username, m.organization.name) for m in got] == [
            (m.pk, m.role, m.user.username, m.organization.name) for m in expected
        ]
        assert len(got) == len(org.users)
        for role, user in org.users.items():
            assert roles(user.pk, org.organization.pk) == [role]
    # another organization's member, and ids of nothing
    assert roles(org_a.users["owner"].pk, org_b.organization.pk) == []
    assert members(10**12) == []
    assert members._template(None).compiler is members._template(None).compiler  # compiled once


def test_a_value_the_lookup_rewrites_takes_the_orm_path(org_a):
    named = Prepared(lambda text: Organization.objects.filter(name__icontains=text), "\0text")
    assert named._template(None).positions is None  # "%text%" is not the sentinel
    assert [o.pk for o in named("lph")] == [org_a.organization.pk]
    assert named("nothing like it") == []


@pytest.mark.django_db(transaction=True)
def test_a_row_lock_outside_a_transaction_is_refused_as_the_orm_refuses_it():
    organization = Organization.objects.create(name="Locked", slug="locked")
    locked = Prepared(lambda pk: Organization.objects.select_for_update().filter(pk=pk), -(2**62) - 103)
    with transaction.atomic():
        assert [o.pk for o in locked(organization.pk)] == [organization.pk]
    with pytest.raises(TransactionManagementError):
        locked(organization.pk)
