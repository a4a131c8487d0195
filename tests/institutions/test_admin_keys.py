"""Signing key admin: list without private material, rotate per institution, revoke from a moment."""

import base64

import pytest
from django.urls import reverse
from django.utils import timezone

from institutions.keys import signing_key_current
from institutions.models import SigningKey

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:institutions_signingkey_changelist")


def test_list_and_detail_never_show_the_private_key(admin_client, school, other_school):
    key = signing_key_current(institution=school)
    signing_key_current(institution=other_school)
    secret = bytes(key.private_key_encrypted)
    pages = [
        admin_client.get(CHANGELIST),
        admin_client.get(reverse("admin:institutions_signingkey_change", args=[key.pk])),
    ]
    for response in pages:
        assert response.status_code == 200
        html = response.content.decode()
        assert key.kid in html
        for form in (secret.hex(), base64.b64encode(secret).decode(), "private key (encrypted)"):
            assert form not in html


def test_keys_cannot_be_added_or_deleted_by_hand(admin_client, school):
    key = signing_key_current(institution=school)
    assert admin_client.get(reverse("admin:institutions_signingkey_add")).status_code == 403
    assert admin_client.post(reverse("admin:institutions_signingkey_delete", args=[key.pk])).status_code == 403
    assert SigningKey.objects.filter(pk=key.pk).exists()


def test_rotate_action_retires_the_current_key(admin_client, school, other_school):
    old = signing_key_current(institution=school)
    untouched = signing_key_current(institution=other_school)
    response = admin_client.post(CHANGELIST, {"action": "rotate_institution_keys", "_selected_action": [old.pk]})
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.not_after is not None and old.revoked_at is None
    new = signing_key_current(institution=school)
    assert new.pk != old.pk
    assert signing_key_current(institution=other_school).pk == untouched.pk


def test_revoke_action_asks_for_the_moment_then_revokes(admin_client, school):
    key = signing_key_current(institution=school)
    first = admin_client.post(CHANGELIST, {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert first.status_code == 200 and "compromised_from" in first.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    moment = timezone.localtime() - timezone.timedelta(hours=2)
    response = admin_client.post(
        CHANGELIST,
        {
            "action": "revoke_keys",
            "_selected_action": [key.pk],
            "apply": "1",
            "compromised_from": moment.strftime("%Y-%m-%dT%H:%M"),
            "reason": "Ключ скопирован",
        },
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at == moment.replace(second=0, microsecond=0)
    assert key.revocation_reason == "Ключ скопирован" and key.not_after == key.revoked_at


def test_revoke_in_the_future_is_refused_with_a_message(admin_client, school):
    key = signing_key_current(institution=school)
    later = timezone.localtime() + timezone.timedelta(days=1)
    response = admin_client.post(
        CHANGELIST,
        {
            "action": "revoke_keys",
            "_selected_action": [key.pk],
            "apply": "1",
            "compromised_from": later.strftime("%Y-%m-%dT%H:%M"),
            "reason": "x",
        },
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
