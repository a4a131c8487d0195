"""Secrets come only from the environment: the repository holds none, .env.example says how to make each."""

import collections
import math
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Values that look random but are not secrets, each with its reason.
NOT_SECRETS = {
    # pytest-env defaults in pyproject.toml: fixed keys for the test suite only,
    # named as such, so encrypted fixtures are stable.
    "dGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmchISE=",
    "test-secret-key-not-for-production-0123456789abcdef",
}
# Secrets and how .env.example must say to make them.
SECRETS = ["SECRET_KEY", "REGISTRY_MASTER_KEY"]

TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{24,}={0,2}")
HEX = re.compile(r"[0-9a-fA-F]+")
SETTING_READ = re.compile(r"""env_[a-z]+\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if not name.startswith("tests/") and (ROOT / name).is_file()]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def entropy(token: str) -> float:
    counts = collections.Counter(token)
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


def looks_random(token: str) -> bool:
    """Hex of 32+ digits or base64-like text of high entropy, with letters and digits mixed."""
    if not (re.search(r"\d", token) and re.search(r"[A-Za-z]", token)):
        return False
    if HEX.fullmatch(token):
        return len(token) >= 32 and entropy(token) > 3.0
    return entropy(token) > 4.2


def in_a_url(text: str, start: int) -> bool:
    """Say whether the token at `start` is in a URL without credentials (an example link, not a key)."""
    word_start = max(text.rfind(c, 0, start) for c in " \t\n\"'(") + 1
    word_end = min((i for c in " \t\n\"')" if (i := text.find(c, start)) >= 0), default=len(text))
    return "://" in text[word_start:start] and "@" not in text[word_start:word_end]


@pytest.fixture(scope="module")
def files():
    return [(path, text) for path in repository_files() if (text := text_of(path)) is not None]


def test_the_scan_sees_the_repository(files):
    names = {path.relative_to(ROOT).as_posix() for path, _ in files}
    assert {"registry/settings.py", "pyproject.toml", ".env.example"} <= names


def test_no_private_key_in_the_repository(files):
    offenders = [
        str(path.relative_to(ROOT))
        for path, text in files
        if "-----BEGIN" in text or re.search(r"PRIVATE KEY-----", text)
    ]
    assert offenders == []


def test_no_high_entropy_string_in_the_repository(files):
    found = [
        f"{path.relative_to(ROOT)}: {token[:12]}…"
        for path, text in files
        for match in TOKEN.finditer(text)
        if looks_random(token := match.group()) and token not in NOT_SECRETS and not in_a_url(text, match.start())
    ]
    assert found == []


def test_the_detector_catches_a_pasted_key():
    import base64
    import os
    import secrets

    assert looks_random(base64.b64encode(os.urandom(32)).decode())
    assert looks_random(secrets.token_urlsafe(50))
    assert looks_random(os.urandom(20).hex())
    assert not looks_random("test_other_institution_cannot_touch_a_document")
    assert not looks_random("0" * 64)
    link = '"https://registry.example.org/verify/Jx2v0w1kQ3mP9sT4uV7yZa/"'
    assert in_a_url(link, link.index("Jx2"))
    dsn = '"postgres://registry:Xk29fLq8ZpR3vN7wT1yB5mC0dH6jS4@db.example.org/registry"'
    assert not in_a_url(dsn, dsn.index("Xk29"))


def test_secret_key_is_hard_coded_only_as_the_demo_fallback(files):
    assignments = [
        (path.relative_to(ROOT).as_posix(), line.strip())
        for path, text in files
        for line in text.splitlines()
        if re.match(r"\s*SECRET_KEY\s*=\s*[\"']", line)
    ]
    assert assignments == [("registry/settings.py", 'SECRET_KEY = "insecure-demo-only-" + "x" * 40')]


def test_env_example_shows_how_to_generate_each_secret():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for name in SECRETS:
        at = next(i for i, line in enumerate(lines) if re.match(rf"#?\s*{name}=", line))
        comments = " ".join(lines[max(0, at - 3) : at])
        assert "Generate" in comments or "generate" in comments, name
        assert "python -c" in comments, name


def test_env_example_lists_every_setting_read_from_the_environment(files):
    example = (ROOT / ".env.example").read_text()
    read = {name for path, text in files if path.suffix == ".py" for name in SETTING_READ.findall(text)}
    assert read, "no settings found: the pattern is stale"
    missing = sorted(name for name in read if not re.search(rf"^#?\s*{name}=", example, re.MULTILINE))
    assert missing == []
