"""Verifiable credentials: the W3C cryptosuite vectors, and our credentials checked step by step.

The step-by-step checks follow the eddsa-rdfc-2022 verification algorithm (W3C
vc-di-eddsa §3.3) with pyld, hashlib, base58 and cryptography directly, resolving
the verification method through the did:web document the portal serves.
"""

import base64
import gzip
import hashlib
import json
from pathlib import Path
from urllib.parse import unquote

import base58
import pytest
import rfc8785
from cachetools import LRUCache
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyld import jsonld
from pyld.context_resolver import ContextResolver

from documents import credentials, services
from documents.credentials import ContextNotAllowed, credential_for, did_document
from documents.jcs import canonicalize
from institutions.keys import signing_key_current, signing_key_revoke, signing_key_rotate
from tests.documents.issuing import SNILS_DIGITS, SNILS_FORMATTED, issue, reload

VECTORS = Path(__file__).resolve().parent / "vectors"
RDFC = VECTORS / "eddsa-rdfc-2022"
JCS = VECTORS / "eddsa-jcs-2022"
CONTEXT_DIR = Path(credentials.__file__).resolve().parent / "contexts"
EXAMPLES_V2 = "https://www.w3.org/ns/credentials/examples/v2"
# The published examples context is this single @vocab mapping; the vectors use it.
EXAMPLES_CONTEXT = {"@context": {"@vocab": "https://www.w3.org/ns/credentials/examples#"}}


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_json(path: Path):
    return json.loads(read(path))


def test_contexts(extra=None) -> dict:
    contexts = {
        "https://www.w3.org/ns/credentials/v2": load_json(CONTEXT_DIR / "credentials-v2.jsonld"),
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": load_json(
            CONTEXT_DIR / "ob-v3p0-context-3.0.3.json"
        ),
    }
    contexts.update(extra or {})
    return contexts


test_contexts.__test__ = False  # a helper, not a test


def independent_canonize(document: dict, contexts: dict) -> str:
    def loader(url, options=None):
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": contexts[url]}

    return jsonld.normalize(
        document,
        {
            "algorithm": "URDNA2015",
            "format": "application/n-quads",
            "documentLoader": loader,
            "contextResolver": ContextResolver(LRUCache(maxsize=16), loader),
        },
    )


def key_pair(folder: Path) -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    pair = load_json(folder / "keyPair.json")
    private = base58.b58decode(pair["privateKeyMultibase"][1:])
    public = base58.b58decode(pair["publicKeyMultibase"][1:])
    assert private[:2] == b"\x80\x26" and public[:2] == b"\xed\x01"  # multicodec ed25519-priv / -pub
    return Ed25519PrivateKey.from_private_bytes(private[2:]), Ed25519PublicKey.from_public_bytes(public[2:])


def multikey_to_public(multibase: str) -> Ed25519PublicKey:
    assert multibase.startswith("z")
    raw = base58.b58decode(multibase[1:])
    assert raw[:2] == b"\xed\x01"
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def resolve_did_web(client, did_url: str) -> dict:
    """did:web → https://host/path/did.json (did:web §3.2), fetched from the portal itself."""
    did = did_url.partition("#")[0]
    parts = did.split(":")
    assert parts[:2] == ["did", "web"]
    path = "/".join(parts[3:])
    url = f"/{path}/did.json" if path else "/.well-known/did.json"
    assert unquote(parts[2]) == "127.0.0.1:8000"
    response = client.get(url)
    assert response.status_code == 200
    document = response.json()
    assert document["id"] == did
    (method,) = [m for m in document["verificationMethod"] if m["id"] == did_url]
    assert did_url in document["assertionMethod"] and method["type"] == "Multikey"
    return method


def verify_step_by_step(secured: dict, public_key: Ed25519PublicKey, contexts: dict) -> None:
    """vc-di-eddsa §3.3 (eddsa-rdfc-2022): raise on any failure."""
    proof = dict(secured["proof"])
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-rdfc-2022"
    assert proof["proofPurpose"] == "assertionMethod"
    proof_value = proof.pop("proofValue")
    assert proof_value.startswith("z")
    signature = base58.b58decode(proof_value[1:])
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    proof_config = {**proof, "@context": unsecured["@context"]}
    document_hash = hashlib.sha256(independent_canonize(unsecured, contexts).encode()).digest()
    proof_hash = hashlib.sha256(independent_canonize(proof_config, contexts).encode()).digest()
    public_key.verify(signature, proof_hash + document_hash)


# --- W3C vectors ------------------------------------------------------------------


def test_eddsa_rdfc_2022_vectors_reproduced_byte_for_byte():
    loader = credentials.local_document_loader({**credentials.LOCAL_CONTEXTS, EXAMPLES_V2: EXAMPLES_CONTEXT})
    unsigned = load_json(RDFC / "unsigned.json")
    config = load_json(RDFC / "proofConfigDataInt.json")
    assert credentials.canonize(unsigned, loader=loader) == read(RDFC / "canonDocDataInt.txt")
    assert credentials.canonize(config, loader=loader) == read(RDFC / "proofCanonDataInt.txt")
    doc_hash = hashlib.sha256(read(RDFC / "canonDocDataInt.txt").encode()).hexdigest()
    assert doc_hash == read(RDFC / "docHashDataInt.txt").strip()
    proof_hash = hashlib.sha256(read(RDFC / "proofCanonDataInt.txt").encode()).hexdigest()
    assert proof_hash == read(RDFC / "proofHashDataInt.txt").strip()
    combined = credentials.proof_hash_data(unsigned, config, loader=loader)
    assert combined.hex() == read(RDFC / "combinedHashDataInt.txt").strip()
    private, public = key_pair(RDFC)
    assert private.sign(combined).hex() == read(RDFC / "sigHexDataInt.txt").strip()
    signed = credentials.add_proof(
        unsigned,
        private_key=private,
        verification_method=config["verificationMethod"],
        created=config["created"],
        loader=loader,
    )
    assert signed == load_json(RDFC / "signedDataInt.json")
    assert signed["proof"]["proofValue"] == read(RDFC / "sigBTC58DataInt.txt").strip()
    assert credentials.proof_is_valid(signed, public, loader=loader)
    tampered = {**signed, "name": "Another Credential"}
    assert not credentials.proof_is_valid(tampered, public, loader=loader)


def test_eddsa_jcs_2022_vectors_reproduced_byte_for_byte():
    unsigned = load_json(JCS / "unsigned.json")
    config = load_json(JCS / "proofConfigJCS.json")
    assert canonicalize(unsigned).decode() == read(JCS / "canonDocJCS.txt")
    assert canonicalize(config).decode() == read(JCS / "proofCanonJCS.txt")
    doc_hash = hashlib.sha256(canonicalize(unsigned)).digest()
    proof_hash = hashlib.sha256(canonicalize(config)).digest()
    assert doc_hash.hex() == read(JCS / "docHashJCS.txt").strip()
    assert proof_hash.hex() == read(JCS / "proofHashJCS.txt").strip()
    assert (proof_hash + doc_hash).hex() == read(JCS / "combinedHashJCS.txt").strip()
    private, public = key_pair(JCS)
    signature = private.sign(proof_hash + doc_hash)
    assert signature.hex() == read(JCS / "sigHexJCS.txt").strip()
    # eddsa-jcs-2022 keeps the proof configuration's @context in the proof.
    signed = {**unsigned, "proof": {**config, "proofValue": "z" + base58.b58encode(signature).decode()}}
    assert signed == load_json(JCS / "signedJCS.json")
    public.verify(signature, proof_hash + doc_hash)


def test_loader_serves_only_local_contexts():
    for url in ("https://example.com/context", EXAMPLES_V2, "file:///etc/passwd", "https://www.w3.org/ns/did/v1"):
        with pytest.raises(ContextNotAllowed):
            credentials.document_loader(url)
    evil = {"@context": ["https://www.w3.org/ns/credentials/v2", "https://evil.example/ctx"], "type": "X"}
    with pytest.raises(ContextNotAllowed, match=r"evil\.example"):
        credentials.canonize(evil)


# --- our credentials --------------------------------------------------------------


@pytest.mark.django_db
def test_credential_is_an_open_badge_with_a_verifiable_proof(client, alice_actor, school):
    document = issue(alice_actor)
    credential = credential_for(document)
    assert credential["@context"] == [credentials.VC_V2, credentials.OB_V3]
    assert credential["type"] == ["VerifiableCredential", "AchievementCredential"]
    assert credential["issuer"]["id"] == f"did:web:127.0.0.1%3A8000:institutions:{school.inn}"
    subject = credential["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"] and subject["achievement"]["type"] == ["Achievement"]
    assert credential["validFrom"] == f"{document.issued_on.isoformat()}T00:00:00Z"
    assert "no legal force" in credential["description"]
    assert credential["validUntil"] == f"{document.experiment.purge_on.isoformat()}T00:00:00Z"
    method = resolve_did_web(client, credential["proof"]["verificationMethod"])
    assert credential["proof"]["verificationMethod"].startswith(credential["issuer"]["id"] + "#")
    verify_step_by_step(credential, multikey_to_public(method["publicKeyMultibase"]), test_contexts())


@pytest.mark.django_db
def test_altered_credential_fails_step_by_step(client, alice_actor):
    credential = credential_for(issue(alice_actor))
    method = resolve_did_web(client, credential["proof"]["verificationMethod"])
    altered = json.loads(json.dumps(credential))
    altered["credentialSubject"]["achievement"]["name"] = "Диплом магистра"
    with pytest.raises(InvalidSignature):
        verify_step_by_step(altered, multikey_to_public(method["publicKeyMultibase"]), test_contexts())


@pytest.mark.django_db
def test_credential_holds_no_snils_and_no_clear_name(alice_actor):
    text = json.dumps(credential_for(issue(alice_actor)), ensure_ascii=False)
    assert SNILS_DIGITS not in text and SNILS_FORMATTED not in text
    assert "Ёлкина" not in text
    identifier = json.loads(text)["credentialSubject"]["identifier"][0]
    salt = identifier["salt"]
    expected = "sha256$" + hashlib.sha256(("Ёлкина Анна Петровна" + salt).encode()).hexdigest()
    assert identifier["identityHash"] == expected and identifier["hashed"] is True


@pytest.mark.django_db
def test_did_document_lists_every_key_with_validity(client, alice_actor, school):
    old = issue(alice_actor).signing_key
    signing_key_rotate(institution=school)
    new = issue(alice_actor).signing_key
    document = client.get(f"/institutions/{school.inn}/did.json").json()
    methods = {m["id"].split("#")[1]: m for m in document["verificationMethod"]}
    assert set(methods) == {old.kid, new.kid}
    assert "expires" in methods[old.kid] and "expires" not in methods[new.kid]
    assert set(document["assertionMethod"]) == {m["id"] for m in document["verificationMethod"]}
    signing_key_revoke(key=new)
    revoked = {m["id"].split("#")[1]: m for m in did_document(school)["verificationMethod"]}
    assert "revoked" in revoked[new.kid]
    assert client.get("/institutions/0000000000/did.json").status_code == 404


def bit(credential: dict, index: int) -> int:
    encoded = credential["credentialSubject"]["encodedList"]
    assert encoded[0] == "u"  # multibase base64url, no padding
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(raw) * 8 >= 131072  # the spec's minimum list size (16 KiB), for herd privacy
    return (raw[index // 8] >> (7 - index % 8)) & 1


@pytest.mark.django_db
def test_status_list_bit_flips_on_annulment(client, alice_actor):
    document = issue(alice_actor)
    other = issue(alice_actor)
    entry = credential_for(document)["credentialStatus"]
    assert entry["type"] == "BitstringStatusListEntry" and entry["statusPurpose"] == "revocation"
    index = int(entry["statusListIndex"])
    assert index == document.status_list_index
    assert entry["statusListCredential"].endswith("/credentials/status/revocation")
    before = client.get("/credentials/status/revocation").json()
    assert bit(before, index) == 0 and bit(before, other.status_list_index) == 0
    services.document_annul(actor=alice_actor, document=document, reason="Выдан ошибочно")
    after = client.get("/credentials/status/revocation").json()
    assert bit(after, index) == 1 and bit(after, other.status_list_index) == 0
    assert reload(document).status_list_index == index


@pytest.mark.django_db
def test_status_list_credential_is_signed_by_the_registry(client, alice_actor):
    annulled = issue(alice_actor)
    services.document_annul(actor=alice_actor, document=annulled, reason="Выдан ошибочно")
    credential = client.get("/credentials/status/revocation").json()
    assert credential["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert credential["credentialSubject"]["type"] == "BitstringStatusList"
    method = resolve_did_web(client, credential["proof"]["verificationMethod"])
    assert credential["issuer"] == credential["proof"]["verificationMethod"].split("#")[0]
    verify_step_by_step(credential, multikey_to_public(method["publicKeyMultibase"]), test_contexts())


@pytest.mark.django_db
def test_draft_has_no_credential(alice_actor):
    from documents.models import Document

    document = issue(alice_actor)
    Document.objects.filter(pk=document.pk).update(status="draft")
    with pytest.raises(ValueError):
        credential_for(reload(document))


def test_vectors_are_json_canonical_inputs():
    # The JCS vector's canonical document is what the reference package makes too.
    assert rfc8785.dumps(load_json(JCS / "unsigned.json")).decode() == read(JCS / "canonDocJCS.txt")


@pytest.mark.django_db
def test_credentials_never_fetch_a_context_or_touch_the_network(alice_actor, monkeypatch):
    """pyld's own loader (which would fetch over HTTP) is never used, and no socket leaves the host."""
    import socket

    fetched = []

    def forbidden_loader(url, options=None):
        fetched.append(url)
        raise AssertionError(f"pyld's default loader asked for {url}")

    real_connect = socket.socket.connect

    def local_only(sock, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access to {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(jsonld, "_default_document_loader", forbidden_loader)
    monkeypatch.setattr(socket.socket, "connect", local_only)
    # The trap is live: a normalisation without our loader falls into it.
    with pytest.raises(jsonld.JsonLdError):
        jsonld.normalize({"@context": "https://example.org/ctx", "x": 1}, {"algorithm": "URDNA2015"})
    assert fetched == ["https://example.org/ctx"]
    fetched.clear()

    document = issue(alice_actor)
    services.document_annul(actor=alice_actor, document=document, reason="Выдан ошибочно")
    credential = credential_for(reload(document))
    status_list = credentials.status_list_credential()
    assert fetched == []
    key = reload(document).signing_key
    assert credentials.proof_is_valid(credential, Ed25519PublicKey.from_public_bytes(bytes(key.public_key)))
    assert credentials.proof_is_valid(status_list, credentials.registry_private_key().public_key())
    assert fetched == []


@pytest.mark.django_db
def test_achievement_has_every_field_open_badges_requires(alice_actor):
    """OB 3.0 Achievement: id, type, criteria, description, name; the credential: name, issuer, validFrom."""
    credential = credential_for(issue(alice_actor))
    achievement = credential["credentialSubject"]["achievement"]
    for field in ("id", "type", "criteria", "description", "name"):
        assert achievement.get(field), field
    assert achievement["criteria"].get("narrative") or achievement["criteria"].get("id")
    assert credential["name"] and credential["issuer"]["id"] and credential["validFrom"]
    assert "Profile" in credential["issuer"]["type"]


@pytest.mark.django_db
def test_no_fresh_credential_for_an_untrusted_signature(alice_actor, school):
    """A credential is proven with today's key; it must not launder an altered or compromised record."""
    import datetime as dt

    from documents.models import Document
    from registry.errors import Conflict

    altered = issue(alice_actor)
    Document.objects.filter(pk=altered.pk).update(signed_payload={**altered.signed_payload, "number": "77999999999999"})
    with pytest.raises(Conflict):
        credential_for(reload(altered))

    compromised = issue(alice_actor)
    signing_key_revoke(key=compromised.signing_key, compromised_from=compromised.signed_at - dt.timedelta(minutes=1))
    with pytest.raises(Conflict):
        credential_for(reload(compromised))

    # Signed before the compromise moment: still trusted, proven with the institution's new key.
    earlier = issue(alice_actor)
    signing_key_revoke(key=earlier.signing_key)  # compromised from now on
    credential = credential_for(reload(earlier))
    current = signing_key_current(institution=school)
    assert current.pk != earlier.signing_key_id
    assert credential["proof"]["verificationMethod"].endswith("#" + current.kid)
