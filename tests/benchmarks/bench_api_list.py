"""API list: GET /api/v1/documents/ at 1,000,000 rows, first and a deep cursor page, vs the raw select."""

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from tests.benchmarks import datagen
from tests.benchmarks.harness import Row, fmt_ms, log, na
from tests.benchmarks.keys import create_api_key
from tests.benchmarks.lists import requests_count, requests_p50, sql_p50

METRIC = "API list"
TARGET = "p50 ≤ 50 ms"
DEEP_TARGET = "p50 ≤ 50 ms, as fast as the first page"
PATH = "/api/v1/documents/"


def _b64decode(text: str) -> str | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_").decode()
    except ValueError:
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4)).decode()
        except ValueError:
            return None


def deep_link(next_url: str, last_id: int, deep_id: int) -> str | None:
    """Rewrite the first page's `next` link so that it points just past `deep_id`.

    The cursor (DRF's base64 `p=<position>` or any encoding holding the last id) is
    what a client would hold after paging that far; crafting it avoids walking
    thousands of pages to get there.
    """
    parts = urlsplit(next_url)
    query = parse_qs(parts.query)
    for name, values in query.items():
        value = values[0]
        if value == str(last_id):
            query[name] = [str(deep_id)]
            return urlunsplit(("", "", parts.path, urlencode(query, doseq=True), ""))
        decoded = _b64decode(value)
        if decoded and str(last_id) in decoded:
            encoded = base64.b64encode(decoded.replace(str(last_id), str(deep_id)).encode(), altchars=b"-_").decode()
            query[name] = [encoded]
            return urlunsplit(("", "", parts.path, urlencode(query, doseq=True), ""))
    return None


def run(ctx: dict) -> list[Row]:
    from django.test import Client

    from documents.models import Document

    inst = datagen.list_dataset(ctx)
    n = requests_count()
    ids = Document.objects.filter(institution=inst).order_by("-id").values_list("id", flat=True)
    total = ids.count()
    deep_id = ids[int(total * 0.9)]
    raw_sql = "SELECT * FROM documents_document WHERE institution_id = %s {} ORDER BY id DESC LIMIT 100"
    raw_first = sql_p50(raw_sql.format(""), [inst.pk], n)
    raw_deep = sql_p50(raw_sql.format("AND id < %s"), [inst.pk, deep_id], n)
    limit_first = f"{fmt_ms(raw_first)} p50 (raw indexed SELECT … LIMIT 100)"
    limit_deep = f"{fmt_ms(raw_deep)} p50 (raw, id < cursor)"

    key = create_api_key(name="bench-api-list", scope="issue", institution_inn=inst.inn)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ACCEPT="application/json")
    probe = client.get(PATH) if key else None
    if probe is None or probe.status_code in (404, 405):
        what = "create_api_key" if key is None else f"{PATH} answers {probe.status_code}"
        return [
            na(f"{METRIC}: first page", what, limit=limit_first, target=TARGET),
            na(f"{METRIC}: deep cursor page", what, limit=limit_deep, target=DEEP_TARGET),
        ]
    p50_first, status, body = requests_p50(client.get, PATH, n)
    if status != 200:
        return [Row(f"{METRIC}: first page", f"error: HTTP {status}: {body[:120]!r}", limit_first, None, TARGET, False)]
    rows = [
        Row(
            f"{METRIC}: first page",
            f"{fmt_ms(p50_first)} p50",
            limit_first,
            raw_first / p50_first,
            TARGET,
            p50_first <= 50,
        )
    ]
    data = json.loads(body)
    results = data.get("results") or []
    next_url = data.get("next")
    link = deep_link(next_url, results[-1]["id"], deep_id) if (next_url and results and "id" in results[-1]) else None
    if link is None:
        log(f"  API list: cannot build a deep cursor from next={next_url!r}")
        rows.append(
            Row(f"{METRIC}: deep cursor page", "error: no cursor to follow", limit_deep, None, DEEP_TARGET, False)
        )
        return rows
    p50_deep, status, body = requests_p50(client.get, link, n)
    deep_results = json.loads(body).get("results") if status == 200 else None
    row = Row(
        f"{METRIC}: deep cursor page (90% in)",
        f"{fmt_ms(p50_deep)} p50" if status == 200 else f"error: HTTP {status}",
        limit_deep,
        raw_deep / p50_deep if status == 200 else None,
        DEEP_TARGET,
        status == 200 and p50_deep <= 50 and p50_deep <= p50_first * 1.5 + 2,
    )
    if deep_results and deep_results[0].get("id") not in (deep_id - 1, deep_id):
        row.notes.append(f"deep page starts at id {deep_results[0].get('id')}, expected just past {deep_id}")
    rows.append(row)
    return rows
