"""Partner keys and API clients for the API tests, on top of the shared personas."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from documents import services
from institutions.apikeys import api_key_create
from tests.factories import make_snils


def client_for(plaintext: str | None) -> APIClient:
    client = APIClient()
    if plaintext:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def issue_key(school):
    return api_key_create(name="School IS", scope="issue", institution=school)


@pytest.fixture
def other_issue_key(other_school):
    return api_key_create(name="Other school IS", scope="issue", institution=other_school)


@pytest.fixture
def verify_key(db):
    return api_key_create(name="University admissions", scope="verify")


@pytest.fixture
def issuer(issue_key):
    return client_for(issue_key[1])


@pytest.fixture
def other_issuer(other_issue_key):
    return client_for(other_issue_key[1])


@pytest.fixture
def verifier(verify_key):
    return client_for(verify_key[1])


def graduate_data(n: int = 1, **over) -> services.GraduateData:
    base = dict(
        last_name="Иванов",
        first_name="Иван",
        middle_name="Иванович",
        birth_date=dt.date(2007, 3, 1),
        snils=make_snils(500_000 + n),  # clear of GraduateFactory's sequence (make_snils(0), (1), …)
    )
    base.update(over)
    return services.GraduateData(**base)


def certificate_data(n: int = 1, **over) -> services.DocumentData:
    base = dict(
        kind="secondary_general_certificate",
        number=f"{77100000000000 + n:014d}",
        registration_number=f"R-{n}",
        issued_on=dt.date.today() - dt.timedelta(days=1),
        grades=[{"subject": "Математика", "mark": "5"}],
    )
    base.update(over)
    return services.DocumentData(**base)


def issue(actor, n: int = 1, **graduate_over):
    """Issue a grade-11 certificate through the cabinet's service."""
    return services.document_create_and_issue(
        actor=actor, graduate_data=graduate_data(n, **graduate_over), data=certificate_data(n)
    )


def create_body(n: int = 1, **over) -> dict:
    body = {
        "kind": "secondary_general_certificate",
        "number": f"{77200000000000 + n:014d}",
        "registration_number": f"API-{n}",
        "issued_on": (dt.date.today() - dt.timedelta(days=1)).isoformat(),
        "last_name": "Петрова",
        "first_name": "Мария",
        "middle_name": "Сергеевна",
        "birth_date": "2007-05-17",
        "snils": make_snils(1000 + n),
        "grades": [{"subject": "Математика", "mark": "5"}, {"subject": "Русский язык", "mark": "4"}],
    }
    body.update(over)
    return body


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], dict)
    for messages in body["errors"].values():
        assert isinstance(messages, list) and all(isinstance(m, str) for m in messages)
    if code is not None:
        assert body["code"] == code, body
    return body
