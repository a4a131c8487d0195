"""The HTTP client for the Gosuslugi adapter (CONTRACTS.md, "Gosuslugi adapter").

Every call either returns what the portal answered or raises one of two errors,
and the outbox decides from the type alone:

- `RetryableError`: timeouts, connection errors, 5xx and 429 (with `retry_after`
  parsed from `Retry-After`) — the same call may succeed later;
- `FinalError`: any other 4xx — repeating the call cannot help.

One client per process is reused for every call (keep-alive connections matter
more to throughput than anything else here). Over the network it is libcurl
(`_NetworkClient`). With `GOSUSLUGI_URL` empty and the emulator mounted, the
client calls the portal's own WSGI app in-process through httpx's WSGI
transport, so the embedded portal delivers with no server listening.
"""

import datetime as dt
import email.utils
import io
import json as _json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import certifi
import httpx
import pycurl
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.urls import set_script_prefix
from django.urls.base import get_script_prefix

EMULATOR_PREFIX = "/gosuslugi-emulator"

logger = logging.getLogger(__name__)


class GosuslugiError(Exception):
    """A call to Gosuslugi did not succeed; `str()` never contains a SNILS."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetryableError(GosuslugiError):
    """Try the same call again later, not before `retry_after` seconds if given."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class FinalError(GosuslugiError):
    """The portal refused the call for good (a 4xx other than 429)."""


# --- Transport ------------------------------------------------------------------


class _InProcessHandler(WSGIHandler):
    """The portal's WSGI stack, callable from inside another request or task.

    Django's handler sends request_started/request_finished, whose receivers close
    the thread's database connection; called from inside a transaction (a view's
    on_commit hook in eager mode, a test) that would break the caller. This handler
    runs the same middleware and URLs without those signals, as Django's own test
    client does.
    """

    def __call__(self, environ, start_response):
        prefix = get_script_prefix()
        set_script_prefix(get_script_name(environ))
        try:
            response = self.get_response(self.request_class(environ))
            start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
            return [response.content]
        finally:
            set_script_prefix(prefix)


class _InProcessTransport(httpx.WSGITransport):
    """WSGI transport that still honours the read timeout, after the fact.

    A WSGI call cannot be interrupted, but an answer slower than the timeout is
    reported as a timeout, exactly as over the network, so the retry paths are the
    same in the embedded mode.
    """

    def __init__(self, *, timeout: float):
        super().__init__(app=_InProcessHandler())
        self.timeout = timeout

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        response = super().handle_request(request)
        response.read()
        if time.monotonic() - started > self.timeout:
            raise httpx.ReadTimeout("the in-process portal answered after the timeout", request=request)
        return response


def _inprocess_host() -> str:
    """A host name the portal accepts (ALLOWED_HOSTS), for the in-process calls."""
    for host in settings.ALLOWED_HOSTS:
        if host and host != "*" and not host.startswith(".") and "[" not in host:
            return host
    return "localhost"


def base_url() -> str:
    """Where the adapter lives: GOSUSLUGI_URL, or the mounted emulator in-process."""
    if settings.GOSUSLUGI_URL:
        return settings.GOSUSLUGI_URL.rstrip("/")
    if settings.GOSUSLUGI_EMULATOR:
        # https: a production-shaped portal redirects plain http to https.
        return f"https://{_inprocess_host()}{EMULATOR_PREFIX}"
    raise GosuslugiError("GOSUSLUGI_URL is not set and the emulator is switched off")


@dataclass(frozen=True)
class Answer:
    """What the portal answered, whichever transport carried the call."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    def json(self):
        return _json.loads(self.content)


class _NetworkClient:
    """Calls over HTTP(S) to GOSUSLUGI_URL through libcurl (pycurl): one keep-alive handle per thread.

    A call costs a worker about a third of the CPU urllib3 takes (0.19 vs 0.63 ms a
    publish against the emulator; urllib3 parses every answer's headers with the
    email package and sends a request in two writes), and a Celery worker spends
    most of its time in these calls. A curl handle serves one thread at a time, so
    each thread has its own (and so its own connection).
    """

    def __init__(self, *, url: str, token: str, timeout: float):
        self.base = url.rstrip("/")
        self.timeout_ms = int(timeout * 1000)
        self.connect_timeout_ms = int(min(timeout, 5.0) * 1000)
        # "Expect:" turns off curl's 100-continue round trip for bodies over 1 KB.
        self.headers = [f"Authorization: Bearer {token}", "Accept: application/json", "Expect:"]
        self._local = threading.local()
        self._handles: list = []
        self._handles_lock = threading.Lock()

    def _handle(self):
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = pycurl.Curl()
            handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without signals: safe in threads
            handle.setopt(pycurl.TCP_NODELAY, 1)
            handle.setopt(pycurl.TIMEOUT_MS, self.timeout_ms)
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, self.connect_timeout_ms)
            handle.setopt(pycurl.CAINFO, certifi.where())
            handle.setopt(pycurl.FOLLOWLOCATION, 0)
            self._local.handle = handle
            with self._handles_lock:
                self._handles.append(handle)
        return handle

    def send(self, method: str, path: str, *, body: bytes | None, headers: dict) -> Answer:
        handle = self._handle()
        content, header_lines = io.BytesIO(), []

        def header(line: bytes) -> None:
            if line.startswith(b"HTTP/"):  # a new answer (after a 100 Continue, say): its own headers
                header_lines.clear()
            elif b":" in line:
                header_lines.append(line.decode("latin-1"))

        handle.setopt(pycurl.URL, self.base + path)
        handle.setopt(pycurl.HTTPHEADER, self.headers + [f"{name}: {value}" for name, value in headers.items()])
        if body is None:
            handle.setopt(pycurl.HTTPGET, 1)
        else:
            handle.setopt(pycurl.POSTFIELDS, body)
        handle.setopt(pycurl.CUSTOMREQUEST, method)
        handle.setopt(pycurl.WRITEDATA, content)
        handle.setopt(pycurl.HEADERFUNCTION, header)
        try:
            handle.perform()
        except pycurl.error as exc:
            code = exc.args[0] if exc.args else None
            kind = "timeout" if code == pycurl.E_OPERATION_TIMEDOUT else "connection error"
            raise RetryableError(f"{kind}: curl error {code}") from None
        pairs = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
        return Answer(handle.getinfo(pycurl.RESPONSE_CODE), httpx.Headers(pairs), content.getvalue())

    def close(self) -> None:
        with self._handles_lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            handle.close()


class _InProcessClient:
    """Calls to the emulator mounted in this portal, through httpx's WSGI transport."""

    def __init__(self, *, token: str, timeout: float):
        self.http = httpx.Client(
            base_url=base_url(),
            transport=_InProcessTransport(timeout=timeout),
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    def send(self, method: str, path: str, *, body: bytes | None, headers: dict) -> Answer:
        try:
            response = self.http.request(method, path, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"connection error: {type(exc).__name__}") from None
        return Answer(response.status_code, response.headers, response.content)

    def close(self) -> None:
        self.http.close()


_lock = threading.Lock()
_client: _NetworkClient | _InProcessClient | None = None
_client_key: tuple | None = None


def _forget_client() -> None:
    # A forked child (Celery prefork) must not share the parent's sockets.
    global _client, _client_key
    _client, _client_key = None, None


os.register_at_fork(after_in_child=_forget_client)


def client() -> _NetworkClient | _InProcessClient:
    """Return this process's shared client, rebuilt only when the settings change."""
    global _client, _client_key
    key = (settings.GOSUSLUGI_URL, settings.GOSUSLUGI_EMULATOR, settings.GOSUSLUGI_TOKEN, settings.GOSUSLUGI_TIMEOUT)
    current = _client
    if current is not None and _client_key == key:
        return current
    with _lock:
        if _client is not None and _client_key == key:
            return _client
        token, timeout = settings.GOSUSLUGI_TOKEN, settings.GOSUSLUGI_TIMEOUT
        if settings.GOSUSLUGI_URL:
            new = _NetworkClient(url=base_url(), token=token, timeout=timeout)
        else:
            new = _InProcessClient(token=token, timeout=timeout)
        old, _client, _client_key = _client, new, key
        if old is not None:
            old.close()
        return _client


# --- Calls ----------------------------------------------------------------------


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _detail(response: Answer) -> str:
    try:
        body = response.json()
        detail = body.get("detail", "") if isinstance(body, dict) else ""
    except ValueError:
        detail = ""
    return f"HTTP {response.status_code}" + (f": {str(detail)[:300]}" if detail else "")


def _request(
    method: str, path: str, *, json: object = None, headers: dict | None = None, allow_404: bool = False
) -> Answer:
    """Send one request and classify the failure; return 2xx (and 404 when asked) answers."""
    all_headers = dict(headers or {})
    body = None
    if json is not None:
        body = _json.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
        all_headers["Content-Type"] = "application/json"
    response = client().send(method, path, body=body, headers=all_headers)
    status = response.status_code
    if status < 300 or (allow_404 and status == 404):
        return response
    if status == 429:
        raise RetryableError(
            _detail(response), status=status, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500 or status == 408:
        raise RetryableError(
            _detail(response), status=status, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    raise FinalError(_detail(response), status=status)


def publish(*, snils: str, document: dict, idempotency_key: str) -> str:
    """Place a signed document in the holder's account; return the portal's id.

    Idempotent: the same `idempotency_key` again returns the id of the first
    placement and places nothing new.
    """
    response = _request(
        "POST", "/documents", json={"snils": snils, "document": document}, headers={"Idempotency-Key": idempotency_key}
    )
    try:
        portal_id = str(response.json()["id"])
    except (ValueError, KeyError, TypeError):
        raise RetryableError(f"HTTP {response.status_code}: an answer without a document id") from None
    return portal_id


def withdraw(*, portal_id: str) -> bool:
    """Remove a placed document; return False if the portal did not have it (done either way)."""
    response = _request("DELETE", f"/documents/{portal_id}", allow_404=True)
    return response.status_code != 404


def account_documents(*, snils: str) -> list[dict]:
    """Return what the holder's personal account shows."""
    return _request("GET", f"/accounts/{snils}/documents").json()["documents"]


def faults_set(**faults) -> dict:
    """Switch the emulator's faults (emulator only); unknown names are refused by it."""
    return _request("PUT", "/_faults", json=faults).json()
