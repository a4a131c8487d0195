"""The ministry dashboard: drawn charts for operators, refused to institution staff, cheap to compute."""

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from documents.models import Delivery
from experiment import tasks
from experiment.models import Experiment
from experiment.selectors import dashboard_cache_key, dashboard_compute, dashboard_data
from tests.conftest import login_to_admin
from tests.experiment.helpers import issued_document
from tests.factories import InstitutionFactory, ParticipationFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "admin:experiment_experiment_dashboard"


@pytest.fixture(autouse=True)
def private_cache(settings):
    # The dashboard caches for a minute; each test gets its own empty cache.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"dash-{uuid.uuid4()}"}
    }


@pytest.fixture
def operator(client):
    user = UserFactory(username="operator", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="experiment", codename__startswith="view")
    )
    login_to_admin(client, user)
    return user


@pytest.fixture
def activity(experiment, school, other_school):
    college = InstitutionFactory(kind="college", short_name="Колледж Неудач")
    ParticipationFactory(experiment=experiment, institution=college)
    for portal_id in ("P-1", "P-2"):
        issued_document(experiment=experiment, institution=school, portal_id=portal_id)
    failed = issued_document(experiment=experiment, institution=college)
    for _ in range(3):
        Delivery.objects.create(document=failed, institution=college, action="publish", state="failed")
    Delivery.objects.create(document=failed, institution=school, action="publish", state="pending")
    # Another institution's regular document, failed too: not this experiment's figures.
    outsider = InstitutionFactory(short_name="Школа вне эксперимента")
    regular = issued_document(experiment=None, institution=outsider, portal_id="P-R")
    for _ in range(5):
        Delivery.objects.create(document=regular, institution=outsider, action="publish", state="failed")
    return college


def test_dashboard_draws_its_charts_for_an_operator(client, operator, experiment, activity):
    response = client.get(reverse(URL), {"year": experiment.year})
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg") >= 5
    assert "Participants against targets" in page
    assert '<line class="today"' in page and ">today " in page  # the calendar marks today
    assert "Колледж Неудач" in page  # most failed deliveries
    assert "js/dashboard.js" in page and "css/dashboard.css" in page
    assert "<script>" not in page.replace("<script src", "")  # no inline script (CSP)
    data = response.context["data"]
    assert {row["kind"]: row["participants"] for row in data["participation"]}["school"] == 2
    assert data["deliveries"]["done"] == 2 and data["deliveries"]["failed"] == 3
    assert sum(row["n"] for row in data["weeks"]) == 3
    assert data["failed"] == [{"id": activity.pk, "name": "Колледж Неудач", "failed": 3}]
    assert "Школа вне эксперимента" not in page


def test_dashboard_shows_the_2024_targets(client, operator):
    response = client.get(reverse(URL), {"year": 2024})
    page = response.content.decode()
    for target in ("0 of 277 (0%)", "0 of 260 (0%)", "0 of 61 (0%)", "0 of 225 (0%)"):
        assert target in page


def test_dashboard_defaults_to_the_running_experiment(client, operator, experiment):
    response = client.get(reverse(URL))
    assert response.context["experiment"] == experiment


def test_dashboard_is_refused_to_institution_staff(client, alice):
    client.force_login(alice)
    response = client.get(reverse(URL))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_dashboard_is_refused_to_staff_without_the_view_permission(client):
    login_to_admin(client, UserFactory(username="clerk-of-admin", is_staff=True))
    assert client.get(reverse(URL)).status_code == 403


def test_dashboard_figures_are_cached_for_a_minute(experiment, school):
    first = dashboard_data(experiment=experiment)
    issued_document(experiment=experiment, institution=school)
    assert dashboard_data(experiment=experiment) == first


def _age_cached_figures(experiment, seconds: int) -> None:
    key = dashboard_cache_key(experiment.pk)
    data = cache.get(key)
    data["computed_at"] = (timezone.now() - dt.timedelta(seconds=seconds)).isoformat()
    cache.set(key, data)


@pytest.fixture
def eager_tasks():
    from registry.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def test_stale_figures_are_served_at_once_and_refreshed_in_the_background(experiment, school, eager_tasks):
    dashboard_data(experiment=experiment)
    issued_document(experiment=experiment, institution=school)
    _age_cached_figures(experiment, 61)
    stale = dashboard_data(experiment=experiment)
    assert sum(row["n"] for row in stale["weeks"]) == 0  # answered from the cache…
    fresh = dashboard_data(experiment=experiment)
    assert sum(row["n"] for row in fresh["weeks"]) == 1  # …while the refresh ran


def test_one_refresh_at_a_time_however_many_views(experiment, monkeypatch):
    scheduled = []
    monkeypatch.setattr(tasks.dashboard_refresh, "delay", lambda pk: scheduled.append(pk))
    dashboard_data(experiment=experiment)
    _age_cached_figures(experiment, 120)
    for _ in range(5):
        dashboard_data(experiment=experiment)
    assert scheduled == [experiment.pk]
    tasks.dashboard_refresh(experiment.pk)  # the worker runs it: the next stale view may schedule again
    _age_cached_figures(experiment, 120)
    dashboard_data(experiment=experiment)
    assert scheduled == [experiment.pk, experiment.pk]


def test_dashboard_queries_do_not_grow_with_the_data(experiment, activity, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        dashboard_compute(experiment=Experiment.objects.get(pk=experiment.pk))


def test_experiment_list_links_to_the_dashboard(client, operator, experiment):
    page = client.get(reverse("admin:experiment_experiment_changelist")).content.decode()
    assert reverse(URL) in page


# --- The charts themselves ------------------------------------------------------------


def test_weekly_chart_spans_the_experiment_so_far_and_groups_large_numbers():
    import re

    from django.utils import translation

    from experiment.charts import weekly_chart

    rows = [{"week": "2030-03-04", "kind": "secondary_general_certificate", "n": 1_250_000}]
    with translation.override("en"):
        svg = str(
            weekly_chart(rows, starts_on=dt.date(2030, 1, 1), ends_on=dt.date(2030, 12, 31), today=dt.date(2030, 4, 2))
        )
    assert "1,250,000" in svg and "1,500,000" in svg  # the bar's tooltip and the axis top, grouped
    # Monday 31 Dec 2029 (the experiment's first week) to the week of today (1 Apr 2030): 14 weeks, one bar.
    assert svg.count('class="bar"') == 1
    assert svg.count('class="this-week"') == 1
    assert ">31 Dec<" in svg
    slot = (960 - 78 - 8) / 14  # the plot's width over 14 weeks; today's is the last
    assert f'<rect class="this-week" x="{round(78 + 13 * slot, 1)}" y="12" width="{round(slot, 1)}"' in svg
    assert len(re.findall(r'<text class="axis" [^>]*text-anchor="middle">', svg)) == 7  # every other week labelled


def test_donut_total_shrinks_to_fit_and_calendar_labels_do_not_collide():
    from django.utils import translation

    from experiment.charts import calendar_chart, delivery_chart

    with translation.override("en"):
        assert "total-l" in str(delivery_chart({"done": 120, "failed": 3}))
        assert "total-s" in str(delivery_chart({"done": 1_002_873}))
        stages = [
            {
                "number": 1,
                "title": "Формирование",
                "starts_on": "2030-03-15",
                "ends_on": "2030-12-31",
                "allows_forming": True,
                "allows_transfer": False,
            }
        ]
        late = str(
            calendar_chart(
                stages=stages,
                starts_on="2030-03-15",
                ends_on="2030-12-31",
                purge_on="2031-01-01",
                today=dt.date(2030, 12, 20),
            )
        )
        early = str(
            calendar_chart(
                stages=stages,
                starts_on="2030-03-15",
                ends_on="2030-12-31",
                purge_on="2031-01-01",
                today=dt.date(2030, 3, 20),
            )
        )
    # Near the right edge "today" is written leftwards of its line, early in the year rightwards.
    assert 'class="axis today"' in late and 'text-anchor="end">today' in late
    assert 'text-anchor="start">today' in early
    assert "forming · now" in late and "forming · now" in early
    assert "03/15/2030 – 12/31/2030 · forming" in late


def test_failed_institutions_link_to_their_failed_deliveries(client, operator, experiment, activity):
    operator.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    page = client.get(reverse(URL), {"year": experiment.year}).content.decode()
    changelist = reverse("admin:documents_delivery_changelist")
    href = f"{changelist}?institution={activity.pk}&amp;state__exact=failed"
    assert f'href="{href}"' in page
    listing = client.get(href.replace("&amp;", "&"))
    assert listing.status_code == 200  # a lookup the admin accepts (no ?e=1 redirect)
    assert listing.context["cl"].result_count == 3


def test_failed_institutions_are_not_linked_for_an_operator_who_cannot_see_deliveries(
    client, operator, experiment, activity
):
    page = client.get(reverse(URL), {"year": experiment.year}).content.decode()
    assert "Колледж Неудач" in page and "row-link" not in page
