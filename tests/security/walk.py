"""Walk the merged project's URL resolver and build concrete URLs to request."""

import hashlib
import uuid
from dataclasses import dataclass

from django.apps import apps
from django.db import connection
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter

# Tables whose rows a GET may legitimately touch: the session (expiry slides with
# every request) and axes' access logs.
VOLATILE_TABLES = {"django_session", "axes_accesslog", "axes_accessattempt", "axes_accessfailurelog"}
# Columns that bookkeep a read, like the session's expiry: when a partner key was
# last used (written at most once a minute by institutions/apikeys.py).
VOLATILE_COLUMNS = {"institutions_apikey": {"last_used_at"}}


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name"
    params: tuple[str, ...]
    int_params: frozenset[str]
    uuid_params: frozenset[str]
    pattern: object
    callback: object


def routes(patterns=None, namespace: str = "") -> list[Route]:
    """Every named URL pattern of the project, with its parameter names and types."""
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else entry.namespace or namespace
            for route in routes(entry.url_patterns, inner):
                # Parameters of the including pattern (rare here) are not supported.
                found.append(route)
        elif isinstance(entry, URLPattern) and entry.name:
            converters = getattr(entry.pattern, "converters", {}) or {}
            params = tuple(converters) or tuple(entry.pattern.regex.groupindex)
            found.append(
                Route(
                    name=f"{namespace}:{entry.name}" if namespace else entry.name,
                    params=params,
                    int_params=frozenset(k for k, c in converters.items() if isinstance(c, IntConverter)),
                    uuid_params=frozenset(k for k, c in converters.items() if isinstance(c, UUIDConverter)),
                    pattern=entry.pattern,
                    callback=entry.callback,
                )
            )
    return found


def urls_for(route: Route, *, ids: list[int], words: list[str]) -> list[str]:
    """Concrete URLs for `route`: each candidate value put into every parameter."""
    if not route.params:
        candidates = [{}]
    else:
        candidates = []
        for i in ids:
            candidates.append({p: str(i) for p in route.params})
        for w in words:
            if route.int_params or route.uuid_params:
                break
            candidates.append({p: w for p in route.params})
        if route.uuid_params:
            candidates = [{p: str(uuid.uuid4()) for p in route.params}]
    result = []
    for kwargs in candidates:
        try:
            url = reverse(route.name, kwargs=kwargs)
        except NoReverseMatch:
            continue
        if url not in result:
            result.append(url)
    return result


def database_fingerprint() -> dict[str, str]:
    """A digest of every row of every table (but the volatile ones), per table."""
    digests = {}
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            table = model._meta.db_table
            if table in VOLATILE_TABLES or model._meta.proxy or not model._meta.managed:
                continue
            pk = model._meta.pk.column
            columns = [
                f'"{f.column}"'
                for f in model._meta.concrete_fields
                if f.column not in VOLATILE_COLUMNS.get(table, set())
            ] or ["1"]
            cursor.execute(f'SELECT {", ".join(columns)} FROM "{table}" ORDER BY "{pk}"')
            digests[table] = hashlib.sha256(repr(cursor.fetchall()).encode()).hexdigest()
    return digests


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(t for t in after if before.get(t) != after[t])
