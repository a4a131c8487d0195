"""No admin widget or filter loads a whole large table.

A select box or a related-object filter lists every row of the related table: on
a million documents, graduates or users the page would never come. Every relation
to a large table must be a raw id or an autocomplete widget (or read-only), in the
model admins and in their inlines, and no list filter may list a large table.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.filters import RelatedFieldListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.widgets import AutocompleteMixin, ForeignKeyRawIdWidget, ManyToManyRawIdWidget
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.forms import ModelChoiceField
from django.test import RequestFactory

from experiment.models import Experiment, Stage

# Tables that stay small whatever the load: a select listing them is fine.
SMALL = {Experiment, Stage, Group, Permission, ContentType}
SAFE_WIDGETS = (ForeignKeyRawIdWidget, ManyToManyRawIdWidget, AutocompleteMixin)


@pytest.fixture
def request_as_superuser(db):
    request = RequestFactory().get("/admin/")
    request.user = User.objects.create_superuser("widgets-root", password="x")
    return request


def _unwrap(widget):
    return getattr(widget, "widget", widget)


def _whole_table_selects(form_class, where: str) -> list[str]:
    found = []
    for name, field in form_class.base_fields.items():
        if not isinstance(field, ModelChoiceField):
            continue
        model = field.queryset.model
        if model in SMALL or isinstance(_unwrap(field.widget), SAFE_WIDGETS):
            continue
        found.append(f"{where}.{name} lists every {model._meta.label}")
    return found


def _admins():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def test_every_relation_to_a_large_table_uses_a_raw_id_or_autocomplete_widget(request_as_superuser):
    problems = []
    for _model, model_admin in _admins():
        where = type(model_admin).__name__
        problems += _whole_table_selects(model_admin.get_form(request_as_superuser, None), where)
        for inline in model_admin.get_inline_instances(request_as_superuser, None):
            formset = inline.get_formset(request_as_superuser, None)
            problems += _whole_table_selects(formset.form, f"{where}.{type(inline).__name__}")
    assert problems == []


def test_no_list_filter_lists_a_large_table(request_as_superuser):
    problems = []
    for model, model_admin in _admins():
        for entry in model_admin.get_list_filter(request_as_superuser):
            path, filter_class = (
                (entry, None) if isinstance(entry, str) else (entry if isinstance(entry, tuple) else (None, entry))
            )
            if path is None:
                continue  # a SimpleListFilter: its own lookups
            last = get_fields_from_path(model, path)[-1]
            if not last.is_relation or last.related_model in SMALL:
                continue
            if filter_class is None or issubclass(filter_class, RelatedFieldListFilter):
                problems.append(
                    f"{type(model_admin).__name__}.list_filter {path!r} lists every {last.related_model._meta.label}"
                )
    assert problems == []


def test_the_check_catches_a_select_over_a_large_table(request_as_superuser):
    from institutions.admin import MembershipAdmin
    from institutions.models import Membership

    class Careless(MembershipAdmin):
        raw_id_fields = []
        autocomplete_fields = []

    form = Careless(Membership, admin.site).get_form(request_as_superuser, None)
    assert sorted(_whole_table_selects(form, "Careless")) == [
        "Careless.institution lists every institutions.Institution",
        "Careless.user lists every auth.User",
    ]
