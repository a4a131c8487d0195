"""admin list: the documents changelist at 1,000,000 rows (first and a filtered page) vs a raw select."""

from tests.benchmarks import datagen
from tests.benchmarks.harness import Row, fmt_ms, na
from tests.benchmarks.lists import requests_count, requests_p50, sql_p50

METRIC = "admin list"
TARGET = "p50 ≤ 150 ms"
PATH = "/admin/documents/document/"


def operator_client():
    """A test Client logged in as a ministry operator (staff, not superuser).

    The operator is in the project's "Ministry operators" group when it exists, so the
    changelist shows what a real operator sees (actions included); otherwise the user
    gets the view permissions of the registry's apps.
    """
    from django.contrib.auth.models import Group, Permission
    from django.test import Client

    user = datagen.staff_user("bench-operator", is_staff=True)
    group = Group.objects.filter(name="Ministry operators").first()
    if group is not None:
        user.groups.add(group)
    else:
        perms = Permission.objects.filter(content_type__app_label__in=["documents", "institutions", "experiment"])
        user.user_permissions.add(*perms.filter(codename__startswith="view_"))
    client = Client()
    client.force_login(user)
    _otp_verify(client, user)
    return client


def _otp_verify(client, user) -> None:
    """If the admin requires a second factor (django-otp), mark the session as verified with a device."""
    try:
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice
    except (ImportError, RuntimeError):
        return
    from django.apps import apps

    if not apps.is_installed("django_otp.plugins.otp_totp"):
        return
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def _filter_query(model_admin, inst) -> tuple[str, str, list]:
    """A filtered changelist query the admin offers, and its raw equivalent."""
    names = [f if isinstance(f, str) else getattr(f, "parameter_name", "") or "" for f in model_admin.list_filter]
    flat = [n if isinstance(n, str) else n[0] for n in names]
    if "status" in flat:
        return "?status__exact=issued", "WHERE status = %s", ["issued"]
    if "kind" in flat:
        return f"?kind__exact={datagen.KIND}", "WHERE kind = %s", [datagen.KIND]
    return f"?institution__id__exact={inst.pk}", "WHERE institution_id = %s", [inst.pk]


def run(ctx: dict) -> list[Row]:
    from django.contrib import admin

    from documents.models import Document

    inst = datagen.list_dataset(ctx)
    n = requests_count()
    model_admin = admin.site._registry.get(Document)
    raw_first = sql_p50("SELECT * FROM documents_document ORDER BY id DESC LIMIT 100", [], n)
    query, where, params = _filter_query(model_admin, inst) if model_admin else ("", "", [])
    raw_filtered = sql_p50(f"SELECT * FROM documents_document {where} ORDER BY id DESC LIMIT 100", params, n)
    if model_admin is None:
        return [
            na(f"{METRIC}: first page", "Document in the admin", limit=fmt_ms(raw_first), target=TARGET),
            na(f"{METRIC}: filtered page", "Document in the admin", limit=fmt_ms(raw_filtered), target=TARGET),
        ]
    client = operator_client()
    rows = []
    for label, path, raw in (
        ("first page", PATH, raw_first),
        (f"filtered page ({query[1:]})", PATH + query, raw_filtered),
    ):
        p50, status, _ = requests_p50(client.get, path, n)
        if status != 200:
            rows.append(
                Row(
                    f"{METRIC}: {label}",
                    f"error: HTTP {status}",
                    f"{fmt_ms(raw)} (raw SELECT … LIMIT 100)",
                    None,
                    TARGET,
                    False,
                )
            )
            continue
        rows.append(
            Row(
                f"{METRIC}: {label}",
                f"{fmt_ms(p50)} p50",
                f"{fmt_ms(raw)} p50 (raw SELECT … LIMIT 100)",
                raw / p50,
                TARGET,
                p50 <= 150,
            )
        )
    return rows
