import threading

import pytest
from django.db import connection

from documents.models import Document
from tests.api.conftest import client_for, create_body

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_retries_with_one_idempotency_key_issue_one_document(issue_key):
    """Two copies of one request race (a client retrying on a timeout): one document, one answer."""
    barrier = threading.Barrier(2)
    answers = []

    def post():
        try:
            client = client_for(issue_key[1])
            barrier.wait(timeout=10)
            response = client.post("/api/v1/documents/", create_body(1), HTTP_IDEMPOTENCY_KEY="race-1")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [status for status, _ in answers] == [201, 201]
    assert answers[0][1] == answers[1][1]
    assert Document.objects.count() == 1
