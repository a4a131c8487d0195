import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import assert_error_shape
from tests.factories import ExperimentFactory, InstitutionFactory, ParticipationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/institutions/"


def ids(client, query=""):
    response = client.get(URL + query)
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_directory_lists_institutions_with_their_experiments(verifier, school, experiment):
    (row,) = verifier.get(URL).json()["results"]
    assert row["inn"] == school.inn and row["kind"] == "school" and row["region"] == school.region_code
    assert row["experiments"] == [experiment.year]


def test_directory_filters_by_kind_region_and_experiment(verifier, school, experiment):
    college = InstitutionFactory(kind="college", region_code="50")
    older = ExperimentFactory(year=2024)
    ParticipationFactory(experiment=older, institution=college)
    ParticipationFactory(experiment=older, institution=school)
    assert ids(verifier, "?kind=college") == {college.pk}
    assert ids(verifier, "?region=50") == {college.pk}
    assert ids(verifier, f"?experiment={experiment.year}") == {school.pk}
    assert ids(verifier, "?experiment=2024") == {school.pk, college.pk}
    assert ids(verifier, "?experiment=2024&kind=school") == {school.pk}


def test_directory_queries_do_not_grow_with_the_page(verifier, experiment):
    ParticipationFactory(experiment=experiment)
    verifier.get(URL)
    with CaptureQueriesContext(connection) as few:
        verifier.get(URL)
    for _ in range(6):
        ParticipationFactory(experiment=experiment)
    with CaptureQueriesContext(connection) as more:
        assert len(ids(verifier)) == 7
    assert len(more.captured_queries) == len(few.captured_queries)


def test_directory_refuses_bad_filters_and_unknown_ids(verifier):
    assert "kind" in assert_error_shape(verifier.get(URL + "?kind=castle"), 400)["errors"]
    assert_error_shape(verifier.get(URL + "999999/"), 404)
