"""Documents as W3C Verifiable Credentials: Open Badges 3.0 with a Data Integrity proof.

- `credential_for(document)`: an Open Badges 3.0 `AchievementCredential` on the
  VC 2.0 data model, issued by the institution's `did:web`, with an
  `eddsa-rdfc-2022` proof (RDF Dataset Canonicalization, SHA-256, Ed25519) made
  with the institution's current key, and a `BitstringStatusListEntry`.
- `did_document(institution)`: the institution's DID document, listing every key
  it ever had (current, retired, revoked) as Multikey verification methods with
  their validity, so credentials signed before a rotation still verify.
- `status_list_credential()`: the registry's revocation list (Bitstring Status
  List v1.0), signed by the registry's own key; an annulled document's bit is 1.

JSON-LD contexts come only from the copies in documents/contexts/: the loader
refuses every other URL, so nothing is ever fetched at run time and a credential
cannot smuggle in a context that changes what its terms mean.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path
from urllib.parse import quote, urlsplit

import base58
from cachetools import LRUCache
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pyld import jsonld
from pyld.context_resolver import ContextResolver

from documents.kinds import RULES, DocumentKind, Family
from documents.models import Document, DocumentStatus
from documents.status_list import encode_bitstring
from documents.verification import VerificationStatus, verify_document
from institutions.keys import (
    keys_published,
    private_key_for,
    public_key_multibase,
    signing_key_current,
)
from registry.crypto import subkey
from registry.errors import Conflict

VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
DID_V1 = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
CRYPTOSUITE = "eddsa-rdfc-2022"

_CONTEXT_DIR = Path(__file__).resolve().parent / "contexts"
CONTEXT_FILES = {
    VC_V2: "credentials-v2.jsonld",
    OB_V3: "ob-v3p0-context-3.0.3.json",
}

_STATUS_LIST_CACHE_SECONDS = 300
_REGISTRY_KEY_PURPOSE = "registry-status-list-signing-v1"


class ContextNotAllowed(ValueError):
    """A JSON-LD document named a context the registry does not hold locally."""


def _load_contexts(files: dict[str, str]) -> dict[str, dict]:
    return {url: json.loads((_CONTEXT_DIR / name).read_text(encoding="utf-8")) for url, name in files.items()}


LOCAL_CONTEXTS = _load_contexts(CONTEXT_FILES)


def local_document_loader(contexts: dict[str, dict]):
    """Return a pyld document loader serving exactly `contexts` and refusing any other URL."""

    def load(url, options=None):
        try:
            document = contexts[url]
        except KeyError:
            raise ContextNotAllowed(f"JSON-LD context not held locally: {url}") from None
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": document}

    return load


document_loader = local_document_loader(LOCAL_CONTEXTS)
# Our own resolved-context cache: pyld's default one is process-wide and shared
# with any other loader, which would let a context resolved elsewhere leak in.
_context_cache = LRUCache(maxsize=64)


def canonize(document: dict, *, loader=None) -> str:
    """Return the RDFC-1.0 (URDNA2015) canonical N-Quads of a JSON-LD document."""
    loader = loader or document_loader
    cache_ = _context_cache if loader is document_loader else LRUCache(maxsize=16)
    try:
        return jsonld.normalize(
            document,
            {
                "algorithm": "URDNA2015",
                "format": "application/n-quads",
                "documentLoader": loader,
                "contextResolver": ContextResolver(cache_, loader),
            },
        )
    except jsonld.JsonLdError as exc:
        refused = _refusal_in(exc)
        if refused is not None:
            raise refused from exc
        raise


def _refusal_in(exc: BaseException) -> ContextNotAllowed | None:
    """Find our loader's refusal inside pyld's layers of wrapped errors."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ContextNotAllowed):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None


# --- Data Integrity, eddsa-rdfc-2022 ---------------------------------------------


def proof_hash_data(unsecured: dict, proof_config: dict, *, loader=None) -> bytes:
    """Return SHA-256(canonical proof config) ‖ SHA-256(canonical document) (§3.2.4-5).

    The proof configuration is canonicalised under the document's @context.
    """
    config = {k: v for k, v in proof_config.items() if k != "proofValue"}
    config["@context"] = unsecured["@context"]
    document = {k: v for k, v in unsecured.items() if k != "proof"}
    proof_hash = hashlib.sha256(canonize(config, loader=loader).encode()).digest()
    document_hash = hashlib.sha256(canonize(document, loader=loader).encode()).digest()
    return proof_hash + document_hash


def add_proof(
    unsecured: dict, *, private_key: Ed25519PrivateKey, verification_method: str, created: str, loader=None
) -> dict:
    """Return `unsecured` with an eddsa-rdfc-2022 DataIntegrityProof (assertionMethod)."""
    proof = {
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
    }
    signature = private_key.sign(proof_hash_data(unsecured, proof, loader=loader))
    return {**unsecured, "proof": {**proof, "proofValue": "z" + base58.b58encode(signature).decode()}}


def proof_is_valid(secured: dict, public_key: Ed25519PublicKey, *, loader=None) -> bool:
    """Verify an eddsa-rdfc-2022 proof with `public_key` (the key its method names)."""
    from cryptography.exceptions import InvalidSignature

    proof = secured.get("proof") or {}
    value = proof.get("proofValue", "")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE or value[:1] != "z":
        return False
    try:
        public_key.verify(base58.b58decode(value[1:]), proof_hash_data(secured, proof, loader=loader))
    except (InvalidSignature, ValueError):
        return False
    return True


def _now_xsd() -> str:
    return timezone.now().astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- DIDs ---------------------------------------------------------------------------


def _public_base() -> str:
    return settings.REGISTRY_PUBLIC_URL.rstrip("/")


def _did_host() -> str:
    # did:web percent-encodes the port's colon (did:web spec, §3.1).
    return quote(urlsplit(_public_base()).netloc, safe="")


def registry_did() -> str:
    """Return the registry's own did:web (served at /.well-known/did.json)."""
    return f"did:web:{_did_host()}"


def institution_did(institution) -> str:
    """Return did:web:HOST:institutions:INN (served at /institutions/INN/did.json)."""
    return f"{registry_did()}:institutions:{institution.inn}"


def _validity(key) -> dict:
    out = {}
    if key.revoked_at:
        out["revoked"] = key.revoked_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if key.not_after:
        out["expires"] = key.not_after.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def did_document(institution) -> dict:
    """Return the institution's DID document: every key it ever had, as Multikey.

    Retired keys carry `expires`, revoked ones `revoked`; all stay in
    assertionMethod so that credentials proven before a rotation still verify.
    """
    did = institution_did(institution)
    methods = [
        {
            "id": f"{did}#{key.kid}",
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": public_key_multibase(key),
            **_validity(key),
        }
        for key in keys_published().filter(institution=institution)
    ]
    return {
        "@context": [DID_V1, MULTIKEY_V1],
        "id": did,
        "alsoKnownAs": [f"{_public_base()}/institutions/{institution.inn}/"],
        "verificationMethod": methods,
        "assertionMethod": [m["id"] for m in methods],
    }


def registry_private_key() -> Ed25519PrivateKey:
    """The registry's key for its status list, derived from the master key (HKDF)."""
    return Ed25519PrivateKey.from_private_bytes(subkey(_REGISTRY_KEY_PURPOSE))


def registry_key_multibase() -> str:
    from cryptography.hazmat.primitives import serialization

    raw = registry_private_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + base58.b58encode(b"\xed\x01" + raw).decode()


def registry_did_document() -> dict:
    did = registry_did()
    method = {
        "id": f"{did}#status-list",
        "type": "Multikey",
        "controller": did,
        "publicKeyMultibase": registry_key_multibase(),
    }
    return {
        "@context": [DID_V1, MULTIKEY_V1],
        "id": did,
        "verificationMethod": [method],
        "assertionMethod": [method["id"]],
    }


# --- Status list --------------------------------------------------------------------


def status_list_url() -> str:
    return _public_base() + reverse("status-list")


def _annulled_indexes():
    return Document.objects.filter(status=DocumentStatus.ANNULLED, status_list_index__isnull=False)


def status_list_credential() -> dict:
    """Return the signed BitstringStatusListCredential (revocation) of the registry.

    Cached until the set of annulled documents changes (or five minutes pass,
    which refreshes `validFrom`).
    """
    annulled = _annulled_indexes()
    stamp = annulled.aggregate(n=Count("id"), last=Max("annulled_at"), top=Max("id"))
    fingerprint = f"{stamp['n']}|{stamp['last']}|{stamp['top']}|{status_list_url()}"
    cache_key = "status-list:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    url = status_list_url()
    unsecured = {
        "@context": [VC_V2],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": registry_did(),
        "validFrom": _now_xsd(),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_bitstring(annulled.values_list("status_list_index", flat=True).iterator()),
        },
    }
    credential = add_proof(
        unsecured,
        private_key=registry_private_key(),
        verification_method=f"{registry_did()}#status-list",
        created=unsecured["validFrom"],
    )
    cache.set(cache_key, credential, _STATUS_LIST_CACHE_SECONDS)
    return credential


# --- Open Badges 3.0 ----------------------------------------------------------------

_ACHIEVEMENT_TYPE = {
    Family.GENERAL: "Certificate",
    Family.VOCATIONAL: "Diploma",
    Family.HIGHER: "Diploma",
    Family.ADDITIONAL: "Certificate",
}
_BACHELOR_LIKE = {
    DocumentKind.BACHELOR_DIPLOMA: "BachelorDegree",
    DocumentKind.MASTER_DIPLOMA: "MasterDegree",
    DocumentKind.SPECIALIST_DIPLOMA: "Diploma",
    DocumentKind.VOCATIONAL_DIPLOMA: "Diploma",
    DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE: "Certificate",
    DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA: "Diploma",
}


def _identity_hash(payload: dict, salt: str) -> str:
    holder = payload.get("holder") or {}
    name = " ".join(p for p in (holder.get("last_name"), holder.get("first_name"), holder.get("middle_name")) if p)
    return "sha256$" + hashlib.sha256((name + salt).encode()).hexdigest()


def unsigned_credential_for(document) -> dict:
    """Return the unsigned AchievementCredential of an issued (or annulled) document.

    Built from the signed payload, so the credential says exactly what the
    institution signed. The holder is identified by a salted hash of the name
    (OB 3.0 IdentityObject), never by SNILS.
    """
    payload = document.signed_payload or {}
    kind = payload.get("kind", document.kind)
    rule = RULES.get(kind)
    label = str(DocumentKind(kind).label) if kind in DocumentKind.values else kind
    base = _public_base()
    salt = hashlib.sha256(("salt:" + document.verification_code).encode()).hexdigest()[:16]
    programme = payload.get("programme") or {}
    achievement = {
        "id": f"{base}/achievements/{kind}",
        "type": ["Achievement"],
        "name": label,
        "achievementType": _BACHELOR_LIKE.get(kind) or _ACHIEVEMENT_TYPE.get(rule.family if rule else "", "Award"),
        "criteria": {"narrative": label},
        # Required by OB 3.0 (Achievement.description, 1..1).
        "description": programme.get("name") or label,
    }
    if programme.get("name"):
        achievement["fieldOfStudy"] = programme["name"]
    if programme.get("code"):
        achievement["humanCode"] = programme["code"]
    if payload.get("qualification"):
        achievement["specialization"] = payload["qualification"]
    institution = payload.get("institution") or {}
    credential = {
        "@context": [VC_V2, OB_V3],
        "id": base + reverse("verify-code", args=[document.verification_code]),
        "type": ["VerifiableCredential", "AchievementCredential"],
        "issuer": {
            "id": institution_did(document.institution),
            "type": ["Profile"],
            "name": institution.get("name") or document.institution.full_name,
        },
        "validFrom": f"{payload.get('issued_on', document.issued_on.isoformat())}T00:00:00Z",
        "name": label,
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityHash": _identity_hash(payload, salt),
                    "identityType": "name",
                    "hashed": True,
                    "salt": salt,
                }
            ],
            "achievement": achievement,
        },
    }
    if document.experiment_id is not None:
        # Experimental documents are deleted at the purge; the credential says so
        # itself, since the status list cannot speak for a document that is gone.
        credential["validUntil"] = f"{document.experiment.purge_on.isoformat()}T00:00:00Z"
    if payload.get("experiment") is not None or payload.get("legal_force") is False:
        credential["description"] = (
            f"Formed in the {payload.get('experiment')} experiment on digital education documents: no legal force."
        )
    if document.status_list_index is not None:
        url = status_list_url()
        credential["credentialStatus"] = {
            "id": f"{url}#{document.status_list_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(document.status_list_index),
            "statusListCredential": url,
        }
    return credential


def credential_for(document) -> dict:
    """Return the document as a signed Open Badges 3.0 AchievementCredential.

    The proof is made now with the institution's current key, whose verification
    method is in the institution's DID document. Drafts have no credential.
    """
    if document.status == DocumentStatus.DRAFT or not document.signed_payload:
        raise ValueError("a draft has no credential")
    # The proof is made afresh with today's key: it must not lend a new, valid
    # signature to a record whose own signature no longer holds (altered, or made
    # with a key declared compromised).
    if verify_document(document).status in (VerificationStatus.SIGNATURE_INVALID, VerificationStatus.KEY_REVOKED):
        raise Conflict(
            _("The document's signature cannot be trusted, so no credential is issued for it."),
            code="signature_untrusted",
        )
    key = signing_key_current(institution=document.institution)
    return add_proof(
        unsigned_credential_for(document),
        private_key=private_key_for(key),
        verification_method=f"{institution_did(document.institution)}#{key.kid}",
        created=_now_xsd(),
    )
