"""The hash-chained history: verify_history finds the first altered, removed or reordered event."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from documents.history import ALTERED, REMOVED, REORDERED, _recompute, chain_for, history_verify, history_verify_chain
from documents.models import Event
from tests.documents.issuing import issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(alice_actor, school):
    """A chain of at least six events at Alice's school (graduate, drafts, issues)."""
    for _ in range(3):
        issue(alice_actor)
    name = chain_for(school.pk)
    assert Event.objects.filter(chain=name).count() >= 6
    return name


def events(chain):
    return list(Event.objects.filter(chain=chain).order_by("seq"))


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("verify_history", *args, stdout=out)
    return out.getvalue()


def test_intact_history_verifies(chain, other_school, charlie_actor):
    issue(charlie_actor)
    reports = history_verify()
    assert {r.chain for r in reports} >= {chain, chain_for(other_school.pk)}
    assert all(r.fault is None for r in reports)
    output = run_command()
    assert f"ok {chain}" in output and "chains intact" in output


def test_edited_event_is_caught(chain):
    target = events(chain)[3]
    Event.objects.filter(pk=target.pk).update(data={"kind": "master_diploma"})
    fault = history_verify_chain(chain).fault
    assert (fault.problem, fault.seq, fault.event_id) == (ALTERED, target.seq, target.pk)
    with pytest.raises(CommandError):
        run_command()


def test_command_reports_the_first_fault(chain, capsys):
    rows = events(chain)
    Event.objects.filter(pk=rows[2].pk).update(actor_label="user:999")
    Event.objects.filter(pk=rows[4].pk).update(action="document.annulled")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of"):
        call_command("verify_history", "--chain", chain, stdout=out)
    assert f"FAULT {chain}: altered at seq {rows[2].seq} (event #{rows[2].pk})" in out.getvalue()


def test_edited_timestamp_is_caught(chain):
    target = events(chain)[1]
    Event.objects.filter(pk=target.pk).update(created_at=target.created_at.replace(year=2000))
    assert history_verify_chain(chain).fault.problem == ALTERED


def test_edited_and_rehashed_event_is_caught_at_that_event(chain):
    rows = events(chain)
    target = rows[2]
    target.data = {"kind": "forged"}
    forged = {
        "chain": target.chain,
        "seq": target.seq,
        "prev_hash": target.prev_hash,
        "created_at": target.created_at,
        "actor_label": target.actor_label,
        "action": target.action,
        "object_type": target.object_type,
        "object_id": target.object_id,
        "institution_id_ref": target.institution_id_ref,
        "data": target.data,
    }
    Event.objects.filter(pk=target.pk).update(data=target.data, hash=_recompute(forged))
    fault = history_verify_chain(chain).fault
    assert (fault.problem, fault.seq) == (ALTERED, target.seq)


def test_removed_event_is_caught(chain):
    target = events(chain)[2]
    Event.objects.filter(pk=target.pk).delete()
    fault = history_verify_chain(chain).fault
    assert (fault.problem, fault.seq) == (REMOVED, target.seq)


def test_removed_and_renumbered_event_is_caught(chain):
    rows = events(chain)
    target = rows[2]
    Event.objects.filter(pk=target.pk).delete()
    for row in rows[3:]:
        Event.objects.filter(pk=row.pk).update(seq=row.seq - 1)
    fault = history_verify_chain(chain).fault
    assert fault.problem == REMOVED and fault.seq == target.seq


def test_removed_last_event_is_caught(chain):
    last = events(chain)[-1]
    Event.objects.filter(pk=last.pk).delete()
    fault = history_verify_chain(chain).fault
    assert (fault.problem, fault.seq) == (REMOVED, last.seq)


def test_reordered_events_are_caught(chain):
    rows = events(chain)
    a, b = rows[2], rows[3]
    Event.objects.filter(pk=a.pk).update(seq=10_000)
    Event.objects.filter(pk=b.pk).update(seq=a.seq)
    Event.objects.filter(pk=a.pk).update(seq=b.seq)
    fault = history_verify_chain(chain).fault
    assert (fault.problem, fault.seq, fault.event_id) == (REORDERED, a.seq, b.pk)


def test_other_chains_are_unaffected(chain, charlie_actor, other_school):
    issue(charlie_actor)
    Event.objects.filter(pk=events(chain)[1].pk).update(object_id=424242)
    faults = {r.chain: r.fault for r in history_verify()}
    assert faults[chain] is not None and faults[chain_for(other_school.pk)] is None


def test_events_carry_no_personal_data(alice_actor, school):
    """Events outlive the purge, so none may hold a name, birth date, SNILS or free text."""
    import json

    from documents import services
    from documents.models import Graduate
    from tests.documents.issuing import SNILS_DIGITS, SNILS_FORMATTED, certificate_data, graduate_data, reload

    first = issue(alice_actor)
    graduate = Graduate.objects.get(pk=first.graduate_id)
    services.graduate_update(actor=alice_actor, graduate=graduate, data=graduate_data(last_name="Ёлкина-Иванова"))
    services.document_annul(actor=alice_actor, document=reload(first), reason="Ошибка в фамилии Ёлкина")
    second = issue(alice_actor, graduate=graduate)
    services.document_issue_duplicate(actor=alice_actor, original=reload(second), data=certificate_data())
    rows = list(Event.objects.filter(chain=chain_for(school.pk)).values())
    assert {"graduate.created", "graduate.updated", "document.issued", "document.annulled"} <= {
        r["action"] for r in rows
    }
    text = json.dumps(rows, default=str, ensure_ascii=False)
    personal = [
        "Ёлкина",
        "Анна",
        "Петровна",
        "2007-03-01",
        "01.03.2007",
        SNILS_DIGITS,
        SNILS_FORMATTED,
        "Ошибка в фамилии",
    ]
    assert [value for value in personal if value in text] == []
