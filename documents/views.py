"""The institution cabinet: server-rendered pages for staff.

Each view reads through documents.selectors (scoped to the current institution,
so another institution's id is a 404) and changes things through one service;
the services enforce roles and stage rules, the templates only hide buttons.
"""

import functools

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from documents import exports, imports, services
from documents.cabinet_context import cabinet_view
from documents.forms import (
    AnnulForm,
    DocumentFilterForm,
    DocumentForm,
    DuplicateForm,
    GraduateForm,
    GraduateSearchForm,
    UploadForm,
)
from documents.kinds import DocumentKind, kinds_for_institution
from documents.models import (
    DeliveryState,
    DocumentStatus,
    Event,
    ImportJobState,
)
from documents.pii import snils_lookup_hash
from documents.selectors import deliveries_for, documents_for, graduates_for, import_jobs_for
from documents.services import DocumentData
from experiment.services import forming_rule
from registry.errors import DomainError

PAGE_SIZE = 50
get_and_post = require_http_methods(["GET", "HEAD", "POST"])


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _refuse(request, exc: DomainError) -> None:
    messages.error(request, exc.message)


def _signer_only(view):
    """Hide signer pages from clerks (the services refuse them anyway)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.is_signer:
            back = reverse("cabinet:document", args=[kwargs["pk"]]) if "pk" in kwargs else None
            context = {"message": _("Only a signer may do this."), "back": back}
            return render(request, "cabinet/refused.html", context, status=403)
        return view(request, *args, **kwargs)

    return wrapper


# --- Home ----------------------------------------------------------------------------


@require_safe
@cabinet_view
def home(request):
    institution = request.institution
    kinds = dict(DocumentKind.choices)
    statuses = DocumentStatus.values
    table: dict[str, dict] = {}
    for row in documents_for(institution).values("kind", "status").annotate(n=Count("id")).order_by():
        table.setdefault(row["kind"], dict.fromkeys(statuses, 0))[row["status"]] = row["n"]
    document_rows = [
        {
            "kind": kinds.get(kind, kind),
            "counts": [table[kind][s] for s in statuses],
            "total": sum(table[kind].values()),
        }
        for kind in kinds_for_institution(institution.kind)
        + sorted(set(table) - set(kinds_for_institution(institution.kind)))
        if kind in table
    ]
    delivery_counts = {
        row["state"]: row["n"] for row in deliveries_for(institution).values("state").annotate(n=Count("id")).order_by()
    }
    context = {
        "graduates_count": graduates_for(institution).count(),
        "status_labels": [DocumentStatus(s).label for s in statuses],
        "document_rows": document_rows,
        "status_totals": [sum(table[k][s] for k in table) for s in statuses],
        "documents_total": sum(row["total"] for row in document_rows),
        "deliveries": [(DeliveryState(s).label, s, delivery_counts.get(s, 0)) for s in DeliveryState.values],
        "rule": forming_rule(institution=institution),
        "jobs": import_jobs_for(institution).order_by("-id")[:5],
    }
    return render(request, "cabinet/home.html", context)


# --- Graduates -----------------------------------------------------------------------


@require_safe
@cabinet_view
def graduate_list(request):
    form = GraduateSearchForm(request.GET or None)
    graduates = graduates_for(request.institution).order_by("last_name", "first_name", "id")
    if form.is_valid():
        for word in form.cleaned_data["q"].split()[:3]:
            graduates = graduates.filter(
                Q(last_name__icontains=word) | Q(first_name__icontains=word) | Q(middle_name__icontains=word)
            )
        if form.cleaned_data["birth_date"]:
            graduates = graduates.filter(birth_date=form.cleaned_data["birth_date"])
        if form.cleaned_data["snils"]:
            graduates = graduates.filter(snils_hash=snils_lookup_hash(form.cleaned_data["snils"]))
    page = _page(request, graduates.annotate(documents_count=Count("documents")))
    return render(
        request, "cabinet/graduate_list.html", {"form": form, "page": page, "query": _query_without_page(request)}
    )


@get_and_post
@cabinet_view
def graduate_create(request):
    form = GraduateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            graduate = services.graduate_create(actor=request.actor, data=form.data_object())
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("The graduate has been added."))
            return redirect("cabinet:graduate", pk=graduate.pk)
    return render(request, "cabinet/graduate_form.html", {"form": form, "graduate": None})


@require_safe
@cabinet_view
def graduate_detail(request, pk):
    graduate = get_object_or_404(graduates_for(request.institution), pk=pk)
    documents = documents_for(request.institution).filter(graduate=graduate).order_by("-id")
    return render(request, "cabinet/graduate_detail.html", {"graduate": graduate, "documents": documents})


@get_and_post
@cabinet_view
def graduate_edit(request, pk):
    graduate = get_object_or_404(graduates_for(request.institution), pk=pk)
    initial = {
        "last_name": graduate.last_name,
        "first_name": graduate.first_name,
        "middle_name": graduate.middle_name,
        "birth_date": graduate.birth_date,
    }
    form = GraduateForm(request.POST or None, initial=initial)
    # The SNILS is never shown in clear: left empty, the stored one is kept.
    form.fields["snils"].required = False
    form.fields["snils"].help_text = _("Leave empty to keep the current SNILS (%(masked)s).") % {
        "masked": graduate.snils_masked
    }
    if request.method == "POST" and form.is_valid():
        data = form.data_object()
        data.snils = data.snils or graduate.snils
        try:
            services.graduate_update(actor=request.actor, graduate=graduate, data=data)
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("The graduate has been updated."))
            return redirect("cabinet:graduate", pk=graduate.pk)
    return render(request, "cabinet/graduate_form.html", {"form": form, "graduate": graduate})


# --- Documents -----------------------------------------------------------------------


def _document_or_404(request, pk):
    return get_object_or_404(
        documents_for(request.institution).select_related("graduate", "institution", "experiment", "replaces"), pk=pk
    )


def _filtered_documents(request):
    """The institution's documents narrowed by the list's filter form; the list and the export share it."""
    form = DocumentFilterForm(request.GET or None, institution=request.institution)
    documents = documents_for(request.institution)
    if form.is_valid():
        c = form.cleaned_data
        if c["kind"]:
            documents = documents.filter(kind=c["kind"])
        if c["status"]:
            documents = documents.filter(status=c["status"])
        if c["q"]:
            q = c["q"].strip()
            documents = documents.filter(Q(number=q) | Q(registration_number=q) | Q(graduate__last_name__istartswith=q))
    return form, documents


@require_safe
@cabinet_view
def document_list(request):
    form, documents = _filtered_documents(request)
    documents = documents.select_related("graduate").order_by("-id")
    return render(
        request,
        "cabinet/document_list.html",
        {"form": form, "page": _page(request, documents), "query": _query_without_page(request)},
    )


def _document_form_page(request, *, form, title, graduate, document=None, submit=None, intro=None, rule=None):
    context = {
        "form": form,
        "title": title,
        "graduate": graduate,
        "document": document,
        "submit": submit or _("Save"),
        "intro": intro,
        "rule": rule,
    }
    return render(request, "cabinet/document_form.html", context)


@get_and_post
@cabinet_view
def document_create(request, graduate_pk):
    graduate = get_object_or_404(graduates_for(request.institution), pk=graduate_pk)
    form = DocumentForm(
        request.POST or None, institution=request.institution, initial={"issued_on": timezone.localdate()}
    )
    if request.method == "POST" and form.is_valid():
        try:
            document = services.document_create_draft(actor=request.actor, graduate=graduate, data=form.data_object())
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("The draft has been saved."))
            return redirect("cabinet:document", pk=document.pk)
    return _document_form_page(request, form=form, title=_("New document"), graduate=graduate)


@get_and_post
@cabinet_view
def document_edit(request, pk):
    document = _document_or_404(request, pk)
    if document.status != DocumentStatus.DRAFT:
        messages.error(request, _("Only a draft can be edited; correct an issued document by issuing a replacement."))
        return redirect("cabinet:document", pk=document.pk)
    form = DocumentForm(
        request.POST or None, institution=request.institution, initial=DocumentForm.initial_from(document)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.document_update_draft(actor=request.actor, document=document, data=form.data_object())
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("The draft has been saved."))
            return redirect("cabinet:document", pk=document.pk)
    return _document_form_page(
        request, form=form, title=_("Edit the draft"), graduate=document.graduate, document=document
    )


def _events_of(document):
    events = Q(object_type="document", object_id=document.pk)
    if document.import_job_id:
        # The import records one event per batch, naming the batch's id range.
        events |= Q(
            object_type="importjob",
            object_id=document.import_job_id,
            data__ids__0__lte=document.pk,
            data__ids__1__gte=document.pk,
        )
    return Event.objects.filter(events, institution_id_ref=document.institution_id).order_by("seq")


@require_safe
@cabinet_view
def document_detail(request, pk):
    document = _document_or_404(request, pk)
    context = {
        "document": document,
        "events": _events_of(document),
        "deliveries": document.deliveries.order_by("-id"),
        "replacements": documents_for(request.institution).filter(replaces=document).order_by("id"),
        "rule": forming_rule(institution=request.institution),
    }
    return render(request, "cabinet/document_detail.html", context)


@require_POST
@cabinet_view
def document_delete(request, pk):
    document = _document_or_404(request, pk)
    try:
        services.document_delete_draft(actor=request.actor, document=document)
    except DomainError as exc:
        _refuse(request, exc)
        return redirect("cabinet:document", pk=document.pk)
    messages.success(request, _("The draft has been deleted."))
    return redirect("cabinet:documents")


@require_POST
@cabinet_view
def document_issue(request, pk):
    document = _document_or_404(request, pk)
    try:
        services.document_issue(actor=request.actor, document=document)
    except DomainError as exc:
        _refuse(request, exc)
    else:
        messages.success(request, _("The document has been issued and queued for Gosuslugi."))
    return redirect("cabinet:document", pk=document.pk)


@get_and_post
@cabinet_view
@_signer_only
def document_annul(request, pk):
    document = _document_or_404(request, pk)
    form = AnnulForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.document_annul(
                actor=request.actor,
                document=document,
                reason=form.cleaned_data["reason"],
                loss_mark=form.cleaned_data["loss_mark"],
            )
        except DomainError as exc:
            _refuse(request, exc)
        else:
            messages.success(request, _("The document has been annulled."))
            return redirect("cabinet:document", pk=document.pk)
    return render(request, "cabinet/document_annul.html", {"form": form, "document": document})


def _data_of(document, **changes) -> DocumentData:
    data = DocumentData(**{name: getattr(document, name) for name in services.DOCUMENT_FIELDS})
    for name, value in changes.items():
        setattr(data, name, value)
    return data


@get_and_post
@cabinet_view
@_signer_only
def document_duplicate(request, pk):
    original = _document_or_404(request, pk)
    form = DuplicateForm(request.POST or None, initial={"issued_on": timezone.localdate(), "series": original.series})
    if request.method == "POST" and form.is_valid():
        c = form.cleaned_data
        data = _data_of(
            original,
            series=c["series"],
            number=c["number"],
            registration_number=c["registration_number"],
            issued_on=c["issued_on"],
        )
        try:
            duplicate = services.document_issue_duplicate(
                actor=request.actor, original=original, data=data, loss_mark=c["loss_mark"]
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("The duplicate has been issued."))
            return redirect("cabinet:document", pk=duplicate.pk)
    context = {"form": form, "document": original, "rule": forming_rule(institution=request.institution)}
    return render(request, "cabinet/document_duplicate.html", context)


@get_and_post
@cabinet_view
@_signer_only
def document_correct(request, pk):
    original = _document_or_404(request, pk)
    initial = DocumentForm.initial_from(original) | {"number": "", "registration_number": ""}
    form = DocumentForm(
        request.POST or None, institution=request.institution, fixed_kind=original.kind, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        try:
            replacement = services.document_correct(actor=request.actor, original=original, data=form.data_object())
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("The corrected document has been issued; the original is annulled."))
            return redirect("cabinet:document", pk=replacement.pk)
    return _document_form_page(
        request,
        form=form,
        title=_("Correct the document by issuing a replacement"),
        graduate=original.graduate,
        document=original,
        submit=_("Issue the replacement"),
        intro=_(
            "The corrected document is signed and issued under a new number and replaces this one, "
            "which is annulled and withdrawn from Gosuslugi."
        ),
        rule=forming_rule(institution=request.institution),
    )


def verification_url(code: str) -> str:
    """The public verification page of a document, as its QR code links to it."""
    try:
        path = reverse("verify-code", args=[code])
    except NoReverseMatch:
        path = f"/verify/{code}/"
    return f"{settings.REGISTRY_PUBLIC_URL}{path}"


@require_safe
@cabinet_view
def document_print(request, pk):
    import segno

    document = _document_or_404(request, pk)
    url = qr_svg = None
    if document.status != DocumentStatus.DRAFT:
        url = verification_url(document.verification_code)
        qr_svg = segno.make(url, error="m").svg_inline(scale=4, border=2, title=_("Verification QR code"))
    return render(request, "cabinet/document_print.html", {"document": document, "url": url, "qr_svg": qr_svg})


# --- Uploads -------------------------------------------------------------------------


@csrf_exempt
@get_and_post
@cabinet_view
def upload(request):
    """The upload form. CSRF is checked below, after the size check on the raw request:
    an oversized body is refused before Django parses (and spools) it."""
    if request.method == "POST":
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.REGISTRY_MAX_UPLOAD_BYTES + 64 * 1024:
            messages.error(
                request,
                _("The file is too large (at most %(mb)d MB).")
                % {"mb": settings.REGISTRY_MAX_UPLOAD_BYTES // (1024 * 1024)},
            )
            return redirect("cabinet:upload")
    return _upload(request)


@csrf_protect
def _upload(request):
    rule = forming_rule(institution=request.institution)
    issues = request.is_signer
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload_file = form.cleaned_data["file"]
        try:
            if issues and not rule.allowed and not form.cleaned_data["dry_run"]:
                raise DomainError(rule.reason)
            job = imports.import_job_create(
                actor=request.actor,
                institution=request.institution,
                fileobj=upload_file,
                name=upload_file.name,
                dry_run=form.cleaned_data["dry_run"],
            )
        except DomainError as exc:
            form.add_error("file", exc.message)
        else:
            transaction.on_commit(functools.partial(imports.import_job_dispatch, job.pk))
            return redirect("cabinet:job", pk=job.pk)
    context = {
        "form": form,
        "rule": rule,
        "issues": issues,
        "columns": imports.COLUMNS.items(),
        "required": imports.REQUIRED_COLUMNS,
        "jobs": import_jobs_for(request.institution).order_by("-id")[:20],
        "max_mb": settings.REGISTRY_MAX_UPLOAD_BYTES // (1024 * 1024),
    }
    return render(request, "cabinet/upload.html", context)


def _job_state(job) -> dict:
    total = job.total_rows or 0
    done = job.state in (ImportJobState.DONE, ImportJobState.FAILED)
    percent = 100 if job.state == ImportJobState.DONE else (min(99, job.processed_rows * 100 // total) if total else 0)
    return {
        "state": job.state,
        "state_label": job.get_state_display(),
        "finished": done,
        "total": job.total_rows,
        "processed": job.processed_rows,
        "imported": job.imported,
        "rejected": job.rejected,
        "unchanged": job.unchanged,
        "percent": percent,
        "error": imports.job_error_text(job),
    }


@require_safe
@cabinet_view
def job_detail(request, pk):
    job = get_object_or_404(import_jobs_for(request.institution), pk=pk)
    rejections = [(r.line, imports.rejection_reasons(r)) for r in job.rejections.order_by("line")[:100]]
    earlier = (
        import_jobs_for(request.institution)
        .filter(sha256=job.sha256, id__lt=job.pk, state=ImportJobState.DONE, dry_run=False)
        .order_by("-id")
        .first()
    )
    drafts = documents_for(request.institution).filter(import_job=job, status=DocumentStatus.DRAFT).count()
    return render(
        request,
        "cabinet/job.html",
        {
            "job": job,
            "progress": _job_state(job),
            "rejections": rejections,
            "earlier": earlier,
            "drafts": drafts,
            "rule": forming_rule(institution=request.institution) if drafts else None,
        },
    )


@require_POST
@cabinet_view
def job_issue_drafts(request, pk):
    """Issue every draft a clerk's upload created (signer only; the service checks)."""
    job = get_object_or_404(import_jobs_for(request.institution), pk=pk)
    try:
        count = imports.import_job_issue_drafts(actor=request.actor, job=job)
    except DomainError as exc:
        _refuse(request, exc)
    else:
        messages.success(
            request,
            ngettext(
                "%(n)d document has been issued and queued for Gosuslugi.",
                "%(n)d documents have been issued and queued for Gosuslugi.",
                count,
            )
            % {"n": count},
        )
    return redirect("cabinet:job", pk=job.pk)


@require_safe
@cabinet_view
def job_progress(request, pk):
    job = get_object_or_404(import_jobs_for(request.institution), pk=pk)
    return JsonResponse(_job_state(job))


@require_safe
@cabinet_view
def job_errors(request, pk):
    """The rejected rows as CSV in the reader's language: line; column; reason."""
    job = get_object_or_404(import_jobs_for(request.institution), pk=pk)
    header = [_("line"), _("column"), _("reason")]

    def rows():
        yield header
        for rejection in imports.import_job_rejections(job):
            for field, text in imports.rejection_reasons(rejection):
                yield [str(rejection.line), field, imports.neutralize(text)]

    response = StreamingHttpResponse(exports.csv_stream(rows()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response


# --- Exports -------------------------------------------------------------------------


@require_safe
@cabinet_view
def export(request, fmt):
    """Export the institution's documents in the import format; `?snils=full` (signers) includes SNILS."""
    if fmt not in ("csv", "xlsx"):
        raise Http404
    _form, documents = _filtered_documents(request)
    full = request.GET.get("snils") == "full"
    try:
        exports.export_start(
            actor=request.actor,
            institution=request.institution,
            full_snils=full,
            count=documents.count() if full else 0,
        )
    except DomainError as exc:
        context = {"message": exc.message, "back": reverse("cabinet:documents")}
        return render(request, "cabinet/refused.html", context, status=403)
    rows = exports.export_rows(documents, full_snils=full)
    stamp = timezone.localdate().isoformat()
    if fmt == "xlsx":
        return FileResponse(
            exports.xlsx_file(rows),
            as_attachment=True,
            filename=f"documents-{request.institution.inn}-{stamp}.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response = StreamingHttpResponse(exports.csv_stream(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="documents-{request.institution.inn}-{stamp}.csv"'
    return response
