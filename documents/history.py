"""The append-only, hash-chained history of what happened to records.

Each institution has its own chain, so concurrent work at different institutions
never waits on one chain head; events of the registry itself go to the "registry"
chain. An event's hash covers its content and the hash of the one before it.
Events hold ids, codes and counts only — never personal data — so they outlive
the purge.
"""

import hashlib
from dataclasses import dataclass

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


# --- Verification -----------------------------------------------------------------

ALTERED = "altered"
REMOVED = "removed"
REORDERED = "reordered"

_FIELDS = (
    "id",
    "chain",
    "seq",
    "prev_hash",
    "hash",
    "created_at",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "institution_id_ref",
    "data",
)


@dataclass(frozen=True)
class ChainFault:
    """The first break in one chain: what happened (altered, removed, reordered) and where."""

    chain: str
    problem: str
    seq: int
    event_id: int | None
    detail: str


@dataclass(frozen=True)
class ChainReport:
    chain: str
    events: int
    fault: ChainFault | None


def _recompute(row: dict, *, seq: int | None = None) -> str:
    return event_hash(
        chain=row["chain"],
        seq=row["seq"] if seq is None else seq,
        prev_hash=row["prev_hash"],
        created_at=row["created_at"],
        actor_label=row["actor_label"],
        action=row["action"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        institution_id=row["institution_id_ref"],
        data=row["data"],
    )


_RENUMBER_WINDOW = 16


def _classify_broken_link(chain: str, row: dict, expected: int) -> ChainFault:
    """Name the fault when `row` does not follow the event before it.

    - it follows an event that now sits elsewhere: the two were reordered;
    - it is intact where it stands: the event before it was rewritten (content
      and hash), which only the broken link reveals;
    - it would be intact a few positions later: events before it were removed and
      the rest renumbered to hide the gap;
    - otherwise it was changed itself.
    """
    seq = row["seq"]
    predecessor = Event.objects.filter(chain=chain, hash=row["prev_hash"]).values("seq").first()
    if predecessor is not None and predecessor["seq"] != expected - 1:
        return ChainFault(
            chain,
            REORDERED,
            seq,
            row["id"],
            f"event #{row['id']} follows the event now at seq {predecessor['seq']}, not the one at seq {expected - 1}",
        )
    if _recompute(row) == row["hash"]:
        previous = Event.objects.filter(chain=chain, seq=expected - 1).values("id").first()
        return ChainFault(
            chain,
            ALTERED,
            expected - 1,
            previous["id"] if previous else None,
            f"the event at seq {expected - 1} was changed and re-hashed",
        )
    for gap in range(1, _RENUMBER_WINDOW + 1):
        if _recompute(row, seq=seq + gap) == row["hash"]:
            return ChainFault(
                chain, REMOVED, seq, row["id"], f"{gap} event(s) before seq {seq} removed and the rest renumbered"
            )
    return ChainFault(chain, ALTERED, seq, row["id"], f"event #{row['id']} at seq {seq} was changed")


def history_verify_chain(chain: str) -> ChainReport:
    """Walk one chain in order and return its first fault, if any.

    An event is altered when its hash no longer matches its content; removed when
    its sequence number is missing or it follows an event that no longer exists
    (or the chain head is ahead of the last event); reordered when it follows
    an event that now sits at another position.
    """
    # The head is read first and the walk stops at it, so events appended while
    # the walk runs are neither judged nor mistaken for a truncation.
    head = EventChainHead.objects.filter(chain=chain).first()
    expected, prev, count = 1, GENESIS, 0
    rows = Event.objects.filter(chain=chain).order_by("seq").values(*_FIELDS)
    if head is not None:
        rows = rows.filter(seq__lte=head.seq)
    for row in rows.iterator(chunk_size=2000):
        count += 1
        if row["seq"] != expected:
            return ChainReport(
                chain,
                count,
                ChainFault(chain, REMOVED, expected, None, f"seq {expected}–{row['seq'] - 1} missing"),
            )
        if row["prev_hash"] != prev:
            return ChainReport(chain, count, _classify_broken_link(chain, row, expected))
        if _recompute(row) != row["hash"]:
            fault = ChainFault(chain, ALTERED, expected, row["id"], f"event #{row['id']} at seq {expected} was changed")
            return ChainReport(chain, count, fault)
        prev, expected = row["hash"], expected + 1
    if head is not None and head.seq >= expected:
        return ChainReport(
            chain, count, ChainFault(chain, REMOVED, expected, None, f"seq {expected}–{head.seq} missing at the end")
        )
    if head is not None and head.seq == expected - 1 and head.hash != prev:
        return ChainReport(
            chain, count, ChainFault(chain, ALTERED, head.seq, None, "the last event differs from the chain head")
        )
    return ChainReport(chain, count, None)


def history_verify(*, chains: list[str] | None = None) -> list[ChainReport]:
    """Verify every chain (or the given ones); one report per chain, faults first-only."""
    if chains is None:
        names = set(EventChainHead.objects.values_list("chain", flat=True))
        names |= set(Event.objects.values_list("chain", flat=True).distinct())
        chains = sorted(names)
    return [history_verify_chain(chain) for chain in chains]
