"""The partner API for documents: issue keys list, issue, annul and read their
institution's documents; verify keys verify anyone's.

A document's fields are the import file's English column names, plus `id`,
`status`, `experiment`, `delivery` and `grades`. SNILS is accepted on create and
only ever returned masked. Serializers check types and sizes only; every rule
lives in documents.services, which the cabinet calls too.
"""

import json
import re

import django_filters
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F, OuterRef, Subquery
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from documents import services
from documents.credentials import credential_for
from documents.kinds import DocumentKind
from documents.models import Delivery, DeliveryAction, DeliveryState, Document, DocumentStatus, LossMark
from documents.selectors import documents_for
from documents.signing import signed_form
from documents.validators import snils_normalize
from documents.verification import (
    MAX_CODE_LENGTH,
    Verification,
    VerificationStatus,
    parse_signed_form,
    verify_by_code,
    verify_by_details,
    verify_signed_form,
)
from institutions.apikeys import api_request_once
from registry.actors import Actor
from registry.api import JSON_PARSERS, JSON_RENDERERS
from registry.api.direct import DirectAnswerMixin
from registry.api.errors import AUTH_ERRORS, error_responses
from registry.api.pagination import NewestFirstCursorPagination
from registry.api.permissions import IsIssueKey, IsVerifyKey
from registry.crypto import keyed_hash
from registry.errors import DomainError, NotFound

IDEMPOTENCY_HASH_PURPOSE = "api-idempotency-v1"
# The model's integer column limit, so an absurd value is a 400 here, not a database error.
MAX_HOURS = 100_000

_VALID_SNILS = "112-233-445 95"  # the checksum's documented known-good value, for examples only


# --- Serializers ----------------------------------------------------------------

_DATETIME = serializers.DateTimeField()


class GradeSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=200)
    mark = serializers.CharField(max_length=40)


class DeliverySerializer(serializers.Serializer):
    """The document's latest delivery to Gosuslugi."""

    action = serializers.ChoiceField(choices=DeliveryAction.choices)
    state = serializers.ChoiceField(choices=DeliveryState.choices)


class DocumentSerializer(serializers.ModelSerializer):
    last_name = serializers.CharField(source="graduate.last_name", read_only=True)
    first_name = serializers.CharField(source="graduate.first_name", read_only=True)
    middle_name = serializers.CharField(source="graduate.middle_name", read_only=True)
    birth_date = serializers.DateField(source="graduate.birth_date", read_only=True)
    snils = serializers.SerializerMethodField(help_text=_("Masked: only the check digits are shown."))
    grades = GradeSerializer(many=True, read_only=True)
    experiment = serializers.SerializerMethodField(help_text=_("The experiment's year; null when not experimental."))
    delivery = serializers.SerializerMethodField(
        help_text=_("The latest delivery to Gosuslugi (publish or withdraw) and its state; null for a draft.")
    )
    verification_url = serializers.SerializerMethodField(help_text=_("The public verification page (QR target)."))

    class Meta:
        model = Document
        fields = [
            "id",
            "kind",
            "series",
            "number",
            "registration_number",
            "issued_on",
            "last_name",
            "first_name",
            "middle_name",
            "birth_date",
            "snils",
            "programme_code",
            "programme_name",
            "qualification",
            "honours",
            "hours",
            "grades",
            "status",
            "experiment",
            "delivery",
            "verification_code",
            "verification_url",
            "annulled_at",
            "annul_reason",
        ]
        read_only_fields = fields

    def to_representation(self, document):
        # Written out rather than walked field by field: on a 50-row page DRF's generic
        # field machinery costs more than the database query. The declared fields above
        # still describe the output for the schema, and the schema tests hold the two
        # together.
        graduate = document.graduate
        return {
            "id": document.pk,
            "kind": document.kind,
            "series": document.series,
            "number": document.number,
            "registration_number": document.registration_number,
            "issued_on": document.issued_on.isoformat(),
            "last_name": graduate.last_name,
            "first_name": graduate.first_name,
            "middle_name": graduate.middle_name,
            "birth_date": graduate.birth_date.isoformat(),
            "snils": self.get_snils(document),
            "programme_code": document.programme_code,
            "programme_name": document.programme_name,
            "qualification": document.qualification,
            "honours": document.honours,
            "hours": document.hours,
            "grades": [{"subject": str(g["subject"]), "mark": str(g["mark"])} for g in document.grades or []],
            "status": document.status,
            "experiment": self.get_experiment(document),
            "delivery": self.get_delivery(document),
            "verification_code": document.verification_code,
            "verification_url": self.get_verification_url(document),
            "annulled_at": _DATETIME.to_representation(document.annulled_at) if document.annulled_at else None,
            "annul_reason": document.annul_reason,
        }

    def get_snils(self, document) -> str:
        return document.graduate.snils_masked

    def get_experiment(self, document) -> int | None:
        if hasattr(document, "experiment_year"):  # annotated by the view: no experiment row per document
            return document.experiment_year
        return document.experiment.year if document.experiment_id else None

    @extend_schema_field(DeliverySerializer(allow_null=True))
    def get_delivery(self, document):
        # Annotated by the view's queryset, so a page costs no query per row.
        state = getattr(document, "delivery_state", None)
        if state is None:
            return None
        return {"action": document.delivery_action, "state": state}

    def get_verification_url(self, document) -> str:
        return f"{settings.REGISTRY_PUBLIC_URL}/verify/{document.verification_code}/"


class DocumentCreateSerializer(serializers.Serializer):
    """A document to issue, with its holder; the import file's columns as fields."""

    kind = serializers.ChoiceField(choices=DocumentKind.choices)
    series = serializers.CharField(max_length=30, required=False, allow_blank=True, default="")
    number = serializers.CharField(max_length=30)
    registration_number = serializers.CharField(max_length=30)
    issued_on = serializers.DateField()
    last_name = serializers.CharField(max_length=100)
    first_name = serializers.CharField(max_length=100)
    middle_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    birth_date = serializers.DateField()
    snils = serializers.CharField(
        max_length=20, write_only=True, help_text=_("11 digits, with or without separators; never returned in clear.")
    )
    programme_code = serializers.CharField(max_length=8, required=False, allow_blank=True, default="")
    programme_name = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    qualification = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    honours = serializers.BooleanField(required=False, default=False)
    hours = serializers.IntegerField(required=False, allow_null=True, default=None, max_value=MAX_HOURS)
    grades = GradeSerializer(many=True, required=False, default=list, max_length=services.MAX_GRADES)

    def to_data(self) -> tuple[services.GraduateData, services.DocumentData]:
        v = self.validated_data
        graduate = services.GraduateData(
            last_name=v["last_name"],
            first_name=v["first_name"],
            middle_name=v["middle_name"],
            birth_date=v["birth_date"],
            snils=snils_normalize(v["snils"]),
        )
        document = services.DocumentData(
            kind=v["kind"],
            series=v["series"],
            number=v["number"],
            registration_number=v["registration_number"],
            issued_on=v["issued_on"],
            programme_code=v["programme_code"],
            programme_name=v["programme_name"],
            qualification=v["qualification"],
            honours=v["honours"],
            hours=v["hours"],
            grades=[dict(g) for g in v["grades"]],
        )
        return graduate, document

    def request_hash(self) -> str:
        """A keyed hash of the normalised body: equal bodies match, the body cannot be recovered."""
        body = json.dumps(self.validated_data, sort_keys=True, cls=DjangoJSONEncoder, ensure_ascii=False)
        return keyed_hash(body, purpose=IDEMPOTENCY_HASH_PURPOSE)


class AnnulSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, allow_blank=True)
    loss_mark = serializers.ChoiceField(choices=LossMark.choices, required=False, default=LossMark.NONE)


class SignedDocumentSerializer(serializers.Serializer):
    payload = serializers.DictField(help_text=_("The signed payload; its RFC 8785 canonical bytes are signed."))
    alg = serializers.ChoiceField(choices=[("Ed25519", "Ed25519")])
    kid = serializers.CharField(help_text=_("The signing key's id, published at /.well-known/jwks.json."))
    signature = serializers.CharField(help_text=_("Ed25519 signature, base64url without padding."))


# --- Filters --------------------------------------------------------------------


class DocumentFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=DocumentKind.choices)
    status = django_filters.ChoiceFilter(choices=DocumentStatus.choices)
    number = django_filters.CharFilter(field_name="number")
    series = django_filters.CharFilter(field_name="series")
    issued_on_after = django_filters.DateFilter(
        field_name="issued_on", lookup_expr="gte", label=_("Issued on or after (YYYY-MM-DD)")
    )
    issued_on_before = django_filters.DateFilter(
        field_name="issued_on", lookup_expr="lte", label=_("Issued on or before (YYYY-MM-DD)")
    )
    experiment = django_filters.NumberFilter(field_name="experiment__year", label=_("Experiment year"))
    experimental = django_filters.BooleanFilter(
        field_name="experiment",
        lookup_expr="isnull",
        exclude=True,
        label=_("true: experimental documents only; false: regular ones only"),
    )
    delivery = django_filters.ChoiceFilter(
        field_name="delivery_state",
        choices=DeliveryState.choices,
        label=_("State of the latest delivery to Gosuslugi"),
    )

    class Meta:
        model = Document
        fields = []


# --- Views ----------------------------------------------------------------------

_EXAMPLE_BODY = {
    "kind": "secondary_general_certificate",
    "number": "77000000000001",
    "registration_number": "R-2025-001",
    "issued_on": "2025-06-25",
    "last_name": "Иванов",
    "first_name": "Иван",
    "middle_name": "Иванович",
    "birth_date": "2007-03-01",
    "snils": _VALID_SNILS,
    "grades": [{"subject": "Математика", "mark": "5"}],
}


_EXAMPLE_DOCUMENT = {
    "id": 1042,
    **{k: v for k, v in _EXAMPLE_BODY.items() if k != "snils"},
    "series": "",
    "snils": "***-***-*** 95",
    "programme_code": "",
    "programme_name": "",
    "qualification": "",
    "honours": False,
    "hours": None,
    "status": "issued",
    "experiment": 2025,
    "delivery": {"action": "publish", "state": "done"},
    "verification_code": "EXAMPLE-code-from-the-QR",
    "verification_url": "https://registry.example.org/verify/EXAMPLE-code-from-the-QR/",
    "annulled_at": None,
    "annul_reason": "",
}
_DOCUMENT_EXAMPLE = OpenApiExample("Issued certificate", value=_EXAMPLE_DOCUMENT, response_only=True)


def _issue_key_errors(*extra: int) -> dict:
    return error_responses(*AUTH_ERRORS, 404, *extra)


@extend_schema_view(
    list=extend_schema(
        summary=_("List the institution's documents"),
        description=_(
            "Newest first, cursor-paginated (`next` / `previous` links; no total count). "
            "Only the key's institution's documents are listed."
        ),
        responses={200: DocumentSerializer(many=True), **error_responses(400, *AUTH_ERRORS, 404)},
    ),
    retrieve=extend_schema(
        summary=_("One document, with its delivery state"),
        responses={200: DocumentSerializer, **_issue_key_errors(400)},
        examples=[_DOCUMENT_EXAMPLE],
    ),
)
class DocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """An issue key's documents: list, issue, read, annul, signed form, credential."""

    serializer_class = DocumentSerializer
    renderer_classes = JSON_RENDERERS
    parser_classes = JSON_PARSERS
    permission_classes = [IsIssueKey]
    pagination_class = NewestFirstCursorPagination
    filterset_class = DocumentFilter
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Document.objects.none()
        latest = Delivery.objects.filter(document=OuterRef("pk")).order_by("-id")
        documents = (
            # By id: the key's institution row is not loaded for a list.
            documents_for(self.request.auth.institution_id)
            .select_related("graduate")
            .annotate(
                experiment_year=F("experiment__year"),
                delivery_state=Subquery(latest.values("state")[:1]),
                delivery_action=Subquery(latest.values("action")[:1]),
            )
        )
        if self.action in ("signed", "credential"):
            return documents.select_related("institution", "signing_key", "experiment")
        # The signed payload is the row's largest column and no list shows it.
        return documents.defer("signed_payload")

    def _actor(self) -> Actor:
        return Actor.partner(api_key=self.request.auth)

    def _represent(self, document: Document, **kwargs) -> Response:
        fresh = self.get_queryset().get(pk=document.pk)
        return Response(DocumentSerializer(fresh, context=self.get_serializer_context()).data, **kwargs)

    @extend_schema(
        summary=_("Issue a document"),
        description=_(
            "Creates the holder if new and issues the document in one step: it is signed and queued "
            "for Gosuslugi, through the same rules as the cabinet. Send an `Idempotency-Key` header "
            "so that a retried request never issues twice: the same key with the same body answers "
            "201 again with the document the first request created, as it is now (with "
            "`Idempotent-Replayed: true`), and creates nothing; the same key with a different body is "
            "refused with 422. Keys are per API key and last as long as their document. "
            "A duplicate kind + series + number is 409."
        ),
        request=DocumentCreateSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description=_("Up to 255 printable ASCII characters, unique per request (a UUID)."),
            )
        ],
        responses={201: DocumentSerializer, **error_responses(400, *AUTH_ERRORS, 409, 422)},
        examples=[
            OpenApiExample("Grade 11 certificate", value=_EXAMPLE_BODY, request_only=True),
            OpenApiExample("Issued", value=_EXAMPLE_DOCUMENT, response_only=True, status_codes=["201"]),
        ],
    )
    def create(self, request):
        serializer = DocumentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        graduate_data, data = serializer.to_data()
        actor = self._actor()
        document, replayed = api_request_once(
            api_key=request.auth,
            key=request.headers.get("Idempotency-Key"),
            request_hash=serializer.request_hash(),
            create=lambda: services.document_create_and_issue(actor=actor, graduate_data=graduate_data, data=data),
        )
        headers = {"Location": f"{request.path.rstrip('/')}/{document.pk}/"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return self._represent(document, status=status.HTTP_201_CREATED, headers=headers)

    @extend_schema(
        summary=_("Annul an issued document"),
        description=_("Annuls it with a reason and withdraws it from Gosuslugi."),
        request=AnnulSerializer,
        responses={200: DocumentSerializer, **_issue_key_errors(400)},
        examples=[OpenApiExample("Annul", value={"reason": "Issued by mistake"}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    def annul(self, request, pk=None):
        document = self.get_object()
        serializer = AnnulSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.document_annul(
            actor=self._actor(),
            document=document,
            reason=serializer.validated_data["reason"],
            loss_mark=serializer.validated_data["loss_mark"],
        )
        return self._represent(document)

    @extend_schema(
        summary=_("The signed form"),
        description=_(
            "`payload` signed with Ed25519 over its RFC 8785 canonical bytes; check it against the key "
            "`kid` published at /.well-known/jwks.json. A draft has no signed form (404)."
        ),
        responses={200: SignedDocumentSerializer, **_issue_key_errors(400)},
    )
    @action(detail=True, methods=["get"])
    def signed(self, request, pk=None):
        document = self.get_object()
        if document.status == DocumentStatus.DRAFT or not document.signature:
            raise NotFound(_("This document is not signed yet."), code="not_signed")
        return Response(signed_form(document))

    @extend_schema(
        summary=_("The W3C Verifiable Credential 2.0"),
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description=_("A W3C Verifiable Credential 2.0 (JSON-LD).")),
            **_issue_key_errors(400, 409),
        },
    )
    @action(detail=True, methods=["get"])
    def credential(self, request, pk=None):
        document = self.get_object()
        if document.status == DocumentStatus.DRAFT or not document.signature:
            raise NotFound(_("This document is not signed yet."), code="not_signed")
        return Response(credential_for(document))


# --- Verification ---------------------------------------------------------------


def _asks_by_code(data) -> bool:
    """The rule: a request with a non-empty code is verified by that code, whatever else it carries."""
    return isinstance(data, dict) and bool(data.get("code"))


# Every code is base64url (documents.models); such a string is one the serializer's
# CharField accepts as it is, once trimmed.
_CODE_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CODE_LENGTH}}}")


def _well_formed_code(data) -> str | None:
    """The code of a by-code request whose code has the codes' shape, else None.

    Such a request is what nearly every verification is, and the serializer would
    only accept it unchanged (trimmed), so VerifyView answers it directly, without
    DRF's cycle or a serializer (registry.api.direct). Any other request, a refused
    code included, goes through VerifyRequestSerializer.
    """
    code = data.get("code") if isinstance(data, dict) else None
    if isinstance(code, str):
        code = code.strip()
        if _CODE_SHAPE.fullmatch(code):
            return code
    return None


class VerifyByCodeSerializer(serializers.Serializer):
    """By the code from the QR link (a well-formed code is mostly answered before it: _well_formed_code).

    VerifyRequestSerializer.for_request validates a request with a code with this
    serializer alone, so that the code decides whatever else the request carries
    (_asks_by_code): the other fields are neither read nor refused.
    """

    code = serializers.CharField(max_length=MAX_CODE_LENGTH, required=False)

    def verify(self) -> Verification:
        return verify_by_code(code=self.validated_data["code"])


class VerifyRequestSerializer(VerifyByCodeSerializer):
    """By the code from the QR link, by number (+ series) + holder's last name + birth date,
    or by a signed document presented by its holder."""

    number = serializers.CharField(max_length=30, required=False)
    series = serializers.CharField(max_length=30, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False)
    birth_date = serializers.DateField(required=False)
    signed_form = serializers.DictField(
        required=False,
        help_text=_(
            'A signed document as GET /api/v1/documents/{id}/signed/ returns it: {"payload", "alg", "kid", '
            '"signature"}.'
        ),
    )

    @classmethod
    def for_request(cls, data) -> VerifyByCodeSerializer:
        """The serializer for this request's shape."""
        return VerifyByCodeSerializer(data=data) if _asks_by_code(data) else cls(data=data)

    def validate(self, attrs):
        if _asks_by_code(attrs):
            return attrs
        if "signed_form" in attrs:
            try:
                attrs["signed_form"] = parse_signed_form(json.dumps(attrs["signed_form"]))
            except DomainError as exc:
                raise serializers.ValidationError({"signed_form": [exc.message]}) from None
            return attrs
        missing = [name for name in ("number", "last_name", "birth_date") if not attrs.get(name)]
        if missing:
            message = _(
                "Send the verification code, or the number, the holder's last name and birth date, "
                "or a signed document."
            )
            raise serializers.ValidationError({name: [message] for name in missing})
        return attrs

    def verify(self) -> Verification:
        """Ask documents.verification, the one place verdicts are made (the public page uses it too)."""
        data = self.validated_data
        if _asks_by_code(data):
            return super().verify()
        if "signed_form" in data:
            return verify_signed_form(form=data["signed_form"])
        return verify_by_details(
            number=data["number"],
            series=data.get("series") or "",
            last_name=data["last_name"],
            birth_date=data["birth_date"],
        )


class VerifyInstitutionSerializer(serializers.Serializer):
    inn = serializers.CharField()
    name = serializers.CharField()


class ReplacementSerializer(serializers.Serializer):
    verification_code = serializers.CharField()
    url = serializers.CharField(help_text=_("The replacement's public verification page (path)."))


class VerifyResultSerializer(serializers.Serializer):
    """Describes Verification.as_dict(): with `not_found` only `status` is present."""

    status = serializers.ChoiceField(
        choices=VerificationStatus.choices,
        help_text=_(
            "`valid`: genuine and in force; `annulled`; `replaced` by a duplicate or a corrected document "
            "(see `replaced_by`); `signature_invalid`: altered or forged; `key_revoked`: signed with a key "
            "declared compromised; `not_found`: unknown or purged."
        ),
    )
    kind = serializers.ChoiceField(choices=DocumentKind.choices, required=False)
    series = serializers.CharField(required=False, allow_blank=True)
    number = serializers.CharField(required=False)
    issued_on = serializers.DateField(required=False, allow_null=True)
    institution = VerifyInstitutionSerializer(required=False)
    holder = serializers.CharField(required=False, allow_blank=True, help_text=_("The holder's initials only."))
    experiment = serializers.IntegerField(required=False, allow_null=True)
    legal_force = serializers.BooleanField(required=False, help_text=_("False for documents formed in the experiment."))
    annulled_at = serializers.DateTimeField(required=False, allow_null=True)
    annul_reason = serializers.CharField(required=False, allow_null=True)
    key_revoked_at = serializers.DateTimeField(required=False, allow_null=True)
    replaced_by = ReplacementSerializer(required=False, allow_null=True)


class VerifyView(DirectAnswerMixin, APIView):
    """Verify a document for a university or an employer (verify keys only).

    Issue keys are refused: a verifier is a separate partner with its own key.
    Every verdict, `not_found` included, is a 200 answer: it is the verification's
    result, not an error in the request. A JSON POST of a well-formed code, the
    commonest request of the whole API, is answered without DRF's request cycle
    (registry.api.direct); any other request goes through `post`.
    """

    renderer_classes = JSON_RENDERERS
    parser_classes = JSON_PARSERS
    permission_classes = [IsVerifyKey]

    def direct_input(self, data) -> str | None:
        return _well_formed_code(data)

    def direct_answer(self, code: str) -> dict:
        return verify_by_code(code=code).as_dict()

    @extend_schema(
        operation_id="verify_document",
        summary=_("Verify a document"),
        description=_(
            'By the code from its QR link (`{"code"}`), by number (+ series) and the holder\'s last name '
            'and birth date, or by a signed document (`{"signed_form"}`). Returns the verdict and the '
            "minimum a verifier needs: kind, number, date, institution, the holder's initials. "
            "Experimental documents carry `legal_force: false`."
        ),
        request=VerifyRequestSerializer,
        responses={200: VerifyResultSerializer, **error_responses(400, *AUTH_ERRORS)},
        examples=[
            OpenApiExample("By code", value={"code": "EXAMPLE-code-from-the-QR"}, request_only=True),
            OpenApiExample(
                "By number",
                value={"number": "77000000000001", "last_name": "Иванов", "birth_date": "2007-03-01"},
                request_only=True,
            ),
            OpenApiExample(
                "Genuine experimental certificate",
                response_only=True,
                value={
                    "status": "valid",
                    "kind": "secondary_general_certificate",
                    "series": "",
                    "number": "77000000000001",
                    "issued_on": "2025-06-25",
                    "institution": {"inn": "7707083893", "name": "МБОУ «Школа № 1»"},
                    "holder": "И. И. И.",
                    "experiment": 2025,
                    "legal_force": False,
                    "annulled_at": None,
                    "annul_reason": None,
                    "key_revoked_at": None,
                    "replaced_by": None,
                },
            ),
            OpenApiExample("Unknown or purged", response_only=True, value={"status": "not_found"}),
        ],
    )
    def post(self, request):
        serializer = VerifyRequestSerializer.for_request(request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.verify().as_dict())
