"""An emulator of the Gosuslugi adapter: a real HTTP service the client talks to.

It serves the contract of CONTRACTS.md ("Gosuslugi adapter"): idempotent
placement by `Idempotency-Key`, withdrawal, the holder's personal account, and
switchable faults (errors, timeouts, latency, a rate limit answered with 429 and
`Retry-After`). It is mounted in the portal at /gosuslugi-emulator/ when
GOSUSLUGI_EMULATOR is on, and runs on its own port with
`manage.py run_gosuslugi_emulator`.

State lives outside the registry's database on purpose: the emulator stands in for
another organisation's system, so the registry's transactions, test flushes and the
purge must not reach it, and an in-process call made from inside a registry
transaction must not share it. With GOSUSLUGI_EMULATOR_REDIS_URL (default
REDIS_URL) the state is in Redis — shared by every gunicorn worker and process,
with placement made atomic by a Lua script and the rate limit counted per second
across all of them; without it, in the process's memory (the embedded portal and a
single standalone process).
"""

import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from django import forms
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from documents.kinds import DocumentKind
from documents.validators import snils_is_valid, snils_mask, snils_normalize

SESSION_KEY = "gosuslugi_emulator_snils"


@dataclass
class Faults:
    """Switchable faults; all off by default. Rates are probabilities per write call."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: int = 0
    rate_limit_per_s: int = 0
    # How long a "timeout" keeps the caller waiting; longer than the client's timeout.
    timeout_ms: int = 30_000

    @classmethod
    def from_json(cls, data) -> "Faults":
        """Build from a PUT body; raise ValueError naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown faults: {', '.join(sorted(unknown))}")
        faults = cls()
        for name in ("error_rate", "timeout_rate"):
            value = data.get(name, 0.0)
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number from 0 to 1")
            setattr(faults, name, float(value))
        for name in ("latency_ms", "rate_limit_per_s", "timeout_ms"):
            value = data.get(name, getattr(faults, name))
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
            setattr(faults, name, value)
        return faults


def _account_key(snils: str) -> str:
    # The store is keyed by a digest of the SNILS, so its keys and logs never show one.
    return hashlib.sha256(snils_normalize(snils).encode()).hexdigest()


def _fingerprint(body: dict) -> str:
    # Of the parsed body, keys sorted: the same request re-serialised is the same request.
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- State ----------------------------------------------------------------------


class MemoryStore:
    """The state of one process (embedded portal, single standalone process)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._faults = Faults()
            self._keys: dict[str, tuple[str, str]] = {}
            self._docs: dict[str, dict] = {}
            self._accounts: dict[str, list[str]] = {}
            self._seconds: dict[int, int] = {}
            self._stats = {"created": 0, "replayed": 0, "removed": 0}

    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        self._faults = faults

    def rate_hit(self, limit: int) -> bool:
        second = int(time.time())
        with self._lock:
            count = self._seconds.get(second, 0) + 1
            self._seconds = {second: count}
        return count <= limit

    def place(self, *, key: str, fingerprint: str, record: dict) -> tuple[str, str, bool]:
        with self._lock:
            if key in self._keys:
                self._stats["replayed"] += 1
                return (*self._keys[key], False)
            self._keys[key] = (record["id"], fingerprint)
            self._docs[record["id"]] = record
            self._accounts.setdefault(record["account"], []).append(record["id"])
            self._stats["created"] += 1
            return record["id"], fingerprint, True

    def remove(self, portal_id: str) -> bool:
        with self._lock:
            record = self._docs.pop(portal_id, None)
            if record is None:
                return False
            self._accounts[record["account"]].remove(portal_id)
            self._stats["removed"] += 1
            return True

    def account(self, account: str) -> list[dict]:
        with self._lock:
            return [self._docs[i] for i in self._accounts.get(account, [])]

    def stats(self) -> dict:
        with self._lock:
            return {**self._stats, "placed": len(self._docs)}


_PLACE = """
local existing = redis.call('HMGET', KEYS[1], 'id', 'fp')
if existing[1] then
  redis.call('INCR', KEYS[4] .. 'replayed')
  return {existing[1], existing[2], 0}
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'fp', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('INCR', KEYS[4] .. 'created')
return {ARGV[1], ARGV[2], 1}
"""

_REMOVE = """
local doc = redis.call('GET', KEYS[1])
if not doc then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. 'acct:' .. cjson.decode(doc)['account'], ARGV[2])
redis.call('INCR', ARGV[1] .. 'stat:removed')
return 1
"""


class RedisStore:
    """State shared by every process through Redis, under one key prefix."""

    prefix = "gosuslugi-emulator:"

    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self._place = self.redis.register_script(_PLACE)
        self._remove = self.redis.register_script(_REMOVE)

    def reset(self) -> None:
        keys = list(self.redis.scan_iter(match=self.prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            self.redis.delete(*keys[start : start + 500])

    def faults(self) -> Faults:
        raw = self.redis.get(self.prefix + "faults")
        return Faults(**json.loads(raw)) if raw else Faults()

    def set_faults(self, faults: Faults) -> None:
        self.redis.set(self.prefix + "faults", json.dumps(asdict(faults)))

    def rate_hit(self, limit: int) -> bool:
        key = f"{self.prefix}rate:{int(time.time())}"
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 3)
        count, _ = pipe.execute()
        return count <= limit

    def place(self, *, key: str, fingerprint: str, record: dict) -> tuple[str, str, bool]:
        portal_id, stored_fp, created = self._place(
            keys=[
                f"{self.prefix}key:{key}",
                f"{self.prefix}doc:{record['id']}",
                f"{self.prefix}acct:{record['account']}",
                f"{self.prefix}stat:",
            ],
            args=[record["id"], fingerprint, json.dumps(record), time.time()],
        )
        return portal_id, stored_fp, bool(created)

    def remove(self, portal_id: str) -> bool:
        return bool(self._remove(keys=[f"{self.prefix}doc:{portal_id}"], args=[self.prefix, portal_id]))

    def account(self, account: str) -> list[dict]:
        ids = self.redis.zrange(f"{self.prefix}acct:{account}", 0, -1)
        if not ids:
            return []
        raw = self.redis.mget([f"{self.prefix}doc:{i}" for i in ids])
        return [json.loads(r) for r in raw if r]

    def stats(self) -> dict:
        created, replayed, removed = (
            int(v or 0) for v in self.redis.mget([f"{self.prefix}stat:{n}" for n in ("created", "replayed", "removed")])
        )
        return {"created": created, "replayed": replayed, "removed": removed, "placed": created - removed}


_stores: dict[str, MemoryStore | RedisStore] = {}
_stores_lock = threading.Lock()


def store() -> MemoryStore | RedisStore:
    """Return the emulator's state for the configured backend (one per process)."""
    url = settings.GOSUSLUGI_EMULATOR_REDIS_URL
    found = _stores.get(url)
    if found is None:
        with _stores_lock:
            found = _stores.get(url)
            if found is None:
                found = RedisStore(url) if url else MemoryStore()
                _stores[url] = found
    return found


# --- Contract API ---------------------------------------------------------------


def _error(status: int, detail: str, **headers) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _authorised(request) -> bool:
    token = settings.GOSUSLUGI_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def _api(methods):
    """Token-authenticated JSON endpoint: no CSRF (no cookies are involved), 401 without the token."""

    def wrap(view):
        @csrf_exempt
        @require_http_methods(methods)
        def wrapped(request, *args, **kwargs):
            if not _authorised(request):
                return _error(401, "missing or wrong token", WWW_Authenticate="Bearer")
            return view(request, *args, **kwargs)

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return wrap


def _fault_answer(faults: Faults) -> JsonResponse | None:
    """Apply the rate limit and random errors to a write call; None lets it through."""
    if faults.rate_limit_per_s and not store().rate_hit(faults.rate_limit_per_s):
        return _error(429, "rate limit exceeded", Retry_After="1")
    if faults.error_rate and random.random() < faults.error_rate:
        return _error(503, "service temporarily unavailable")
    return None


def _slow(faults: Faults, *, timed_out: bool) -> None:
    if timed_out:
        time.sleep(faults.timeout_ms / 1000)
    elif faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)


def _public(record: dict) -> dict:
    return {k: record[k] for k in ("id", "status", "received_at", "document")}


@_api(["POST"])
def documents_collection(request):
    """POST /documents: place a signed document; the same Idempotency-Key → 200 and the same id."""
    faults = store().faults()
    refused = _fault_answer(faults)
    if refused is not None:
        return refused
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 200:
        return _error(400, "Idempotency-Key header is required (at most 200 characters)")
    try:
        body = json.loads(request.body)
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    snils, document = body.get("snils"), body.get("document")
    if not isinstance(snils, str) or not snils_is_valid(snils):
        return _error(400, "snils is not a valid SNILS")
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("payload"), dict)
        or not isinstance(document.get("signature"), str)
    ):
        return _error(400, "document must be a signed form: {payload, alg, kid, signature}")
    timed_out = bool(faults.timeout_rate) and random.random() < faults.timeout_rate
    # Half the timeouts hang before placing (it lands after the caller gave up), half
    # after: either way only the idempotency key keeps the retry from a second copy.
    if timed_out and random.random() < 0.5:
        _slow(faults, timed_out=True)
        timed_out = False
    record = {
        "id": uuid.uuid4().hex,
        "status": "placed",
        "received_at": timezone.now().isoformat(),
        "document": document,
        "account": _account_key(snils),
    }
    portal_id, fingerprint, created = store().place(key=key, fingerprint=_fingerprint(body), record=record)
    if fingerprint != _fingerprint(body):
        return _error(422, "this Idempotency-Key was used with another body")
    _slow(faults, timed_out=timed_out)
    return JsonResponse({"id": portal_id, "status": "placed"}, status=201 if created else 200)


@_api(["DELETE"])
def document_item(request, portal_id: str):
    """DELETE /documents/{id}: 204 when removed, 404 when the portal does not have it."""
    faults = store().faults()
    refused = _fault_answer(faults)
    if refused is not None:
        return refused
    timed_out = bool(faults.timeout_rate) and random.random() < faults.timeout_rate
    removed = store().remove(portal_id)
    _slow(faults, timed_out=timed_out)
    if not removed:
        return _error(404, "no such document")
    return HttpResponse(status=204)


@_api(["GET"])
def account_documents(request, snils: str):
    """GET /accounts/{snils}/documents: what the holder's personal account shows."""
    if not snils_is_valid(snils):
        return _error(400, "not a valid SNILS")
    return JsonResponse({"documents": [_public(r) for r in store().account(_account_key(snils))]})


@_api(["GET", "PUT"])
def faults_view(request):
    """PUT /_faults: replace the faults (missing fields switch off); GET shows them."""
    if request.method == "PUT":
        try:
            faults = Faults.from_json(json.loads(request.body or b"{}"))
        except ValueError as exc:
            return _error(400, str(exc))
        store().set_faults(faults)
    return JsonResponse(asdict(store().faults()))


@_api(["GET", "DELETE"])
def state_view(request):
    """GET /_state: counters (created, replayed, removed, placed); DELETE: forget everything."""
    if request.method == "DELETE":
        store().reset()
        return HttpResponse(status=204)
    return JsonResponse(store().stats())


# --- The personal account page --------------------------------------------------


class AccountForm(forms.Form):
    snils = forms.CharField(label=_("SNILS"), max_length=20, help_text=_("For example 112-233-445 95"))

    def clean_snils(self):
        value = self.cleaned_data["snils"]
        if not snils_is_valid(value):
            raise forms.ValidationError(_("SNILS must be 11 digits (XXX-XXX-XXX YY) with a valid check number."))
        return snils_normalize(value)


def _card(record: dict) -> dict:
    payload = record["document"].get("payload") or {}
    holder = payload.get("holder") or {}
    institution = payload.get("institution") or {}
    kind = payload.get("kind", "")
    return {
        "kind": DocumentKind(kind).label if kind in DocumentKind.values else kind,
        "series": payload.get("series", ""),
        "number": payload.get("number", ""),
        "issued_on": payload.get("issued_on", ""),
        "institution": institution.get("name", ""),
        "holder": " ".join(
            p for p in (holder.get("last_name"), holder.get("first_name"), holder.get("middle_name")) if p
        ),
        "experimental": payload.get("legal_force") is False,
        "received_at": record["received_at"],
    }


@require_http_methods(["GET", "POST"])
def account_page(request):
    """One holder's personal account, as the holder would see it at Gosuslugi.

    The SNILS is typed into a form and kept in the session, never in a URL; the
    page refreshes itself, so a document can be watched arriving.
    """
    if request.method == "POST":
        if "forget" in request.POST:
            request.session.pop(SESSION_KEY, None)
            return redirect("gosuslugi_emulator_account")
        form = AccountForm(request.POST)
        if form.is_valid():
            request.session[SESSION_KEY] = form.cleaned_data["snils"]
            return redirect("gosuslugi_emulator_account")
    else:
        form = AccountForm()
    snils = request.session.get(SESSION_KEY)
    cards = [_card(r) for r in store().account(_account_key(snils))] if snils else None
    return render(
        request,
        "emulator/account.html",
        {"form": form, "snils_masked": snils_mask(snils) if snils else "", "cards": cards},
    )
