"""naive issue: the same rows issued one by one through the services and the ORM (report only)."""

import datetime as dt

from tests.benchmarks import datagen
from tests.benchmarks.harness import Row, flush_broker, fmt_rate, scaled, stopwatch

METRIC = "naive issue"
TARGET = "report only: bulk ≥ 10× this"


def run(ctx: dict) -> list[Row]:
    from documents.services import DocumentData, GraduateData, document_create_and_issue
    from registry.actors import Actor

    n = scaled(2_000, minimum=100)
    inst = datagen.institution("naive")
    datagen.enrol(inst, datagen.current_experiment())
    datagen.wipe(inst)
    datagen.signing_key(inst)
    user = datagen.staff_user("bench-naive-signer", institution=inst, role="signer")
    actor = Actor.staff(user=user, institution=inst, role="signer")
    rows = list(datagen.csv_rows(n, purpose="naive"))[1:]
    flush_broker()
    with stopwatch() as t:
        for kind, series, number, reg, issued, last, first, middle, birth, snils in rows:
            document_create_and_issue(
                actor=actor,
                graduate_data=GraduateData(
                    last_name=last,
                    first_name=first,
                    middle_name=middle,
                    birth_date=dt.date.fromisoformat(birth),
                    snils=snils,
                ),
                data=DocumentData(
                    kind=kind,
                    series=series,
                    number=number,
                    registration_number=reg,
                    issued_on=dt.date.fromisoformat(issued),
                ),
            )
    flush_broker()
    datagen.wipe(inst)
    rate = n / t.seconds
    bulk = ctx.get("bulk_docs_per_s")
    times = bulk / rate if bulk else None
    return [
        Row(
            METRIC,
            fmt_rate(rate, f"docs/s ({n:,} one by one)"),
            "—",
            times,
            TARGET + " (ratio = bulk ÷ naive)",
            None if times is None else times >= 10,
        )
    ]
