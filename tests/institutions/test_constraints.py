"""What must never happen to institutions and staff, refused by the database itself."""

import pytest
from django.db import IntegrityError, transaction

from institutions.models import Membership
from tests.factories import InstitutionFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_one_membership_per_user_and_institution_in_the_database(school):
    user = UserFactory(username="dana")
    MembershipFactory(user=user, institution=school, role="clerk")
    with pytest.raises(IntegrityError), transaction.atomic():
        # A second role at the same institution is a change of the row, never a second row.
        Membership.objects.create(user=user, institution=school, role="signer")
    assert Membership.objects.filter(user=user).count() == 1


def test_the_same_user_may_work_at_two_institutions(school, other_school):
    user = UserFactory(username="dana")
    MembershipFactory(user=user, institution=school, role="clerk")
    MembershipFactory(user=user, institution=other_school, role="signer")
    assert Membership.objects.filter(user=user).count() == 2


@pytest.mark.parametrize("field", ["inn", "ogrn"])
def test_an_institution_identifier_is_unique_in_the_database(field):
    first = InstitutionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        InstitutionFactory(**{field: getattr(first, field)})
