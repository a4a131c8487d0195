"""The append-only, hash-chained history of what happened to records.

Each institution has its own chain, so concurrent work at different institutions
never waits on one chain head; events of the registry itself go to the "registry"
chain. An event's hash covers its content and the hash of the one before it.
Events hold ids, codes and counts only — never personal data — so they outlive
the purge.
"""

import hashlib

from django.db import IntegrityError, transaction
from django.utils import timezone

from documents.models import Event, EventChainHead
from documents.signing import canonicalize
from registry.actors import Actor

GENESIS = "0" * 64


def chain_for(institution_id: int | None) -> str:
    return f"institution:{institution_id}" if institution_id else "registry"


def event_hash(
    *,
    chain: str,
    seq: int,
    prev_hash: str,
    created_at,
    actor_label: str,
    action: str,
    object_type: str,
    object_id,
    institution_id,
    data,
) -> str:
    body = {
        "chain": chain,
        "seq": seq,
        "prev": prev_hash,
        "at": created_at.isoformat(),
        "actor": actor_label,
        "action": action,
        "object": [object_type, object_id],
        "institution": institution_id,
        "data": data,
    }
    return hashlib.sha256(canonicalize(body)).hexdigest()


def _lock_head(chain: str) -> EventChainHead:
    head = EventChainHead.objects.select_for_update().filter(chain=chain).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            EventChainHead.objects.create(chain=chain, seq=0, hash=GENESIS)
    except IntegrityError:
        pass  # created by a concurrent writer; lock theirs
    return EventChainHead.objects.select_for_update().get(chain=chain)


@transaction.atomic
def events_record(
    *, actor: Actor, action: str, object_type: str, items: list[tuple[int | None, dict]], institution_id: int | None
) -> list[Event]:
    """Append one event per (object_id, data) item to the institution's chain."""
    chain = chain_for(institution_id)
    head = _lock_head(chain)
    now = timezone.now()
    events = []
    seq, prev = head.seq, head.hash
    for object_id, data in items:
        seq += 1
        h = event_hash(
            chain=chain,
            seq=seq,
            prev_hash=prev,
            created_at=now,
            actor_label=actor.label,
            action=action,
            object_type=object_type,
            object_id=object_id,
            institution_id=institution_id,
            data=data,
        )
        events.append(
            Event(
                chain=chain,
                seq=seq,
                created_at=now,
                actor=actor.user,
                actor_label=actor.label,
                action=action,
                object_type=object_type,
                object_id=object_id,
                institution_id_ref=institution_id,
                data=data,
                prev_hash=prev,
                hash=h,
            )
        )
        prev = h
    Event.objects.bulk_create(events)
    head.seq, head.hash = seq, prev
    head.save(update_fields=["seq", "hash"])
    return events


def event_record(
    *,
    actor: Actor,
    action: str,
    obj=None,
    object_type: str = "",
    object_id=None,
    institution_id: int | None = None,
    data: dict | None = None,
) -> Event:
    """Append one event. `obj` gives the type and id when passed."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = obj.pk
    return events_record(
        actor=actor,
        action=action,
        object_type=object_type,
        items=[(object_id, data or {})],
        institution_id=institution_id,
    )[0]
