"""Cabinet forms: they parse what the user typed and hand it to one service.

Rules (formats, checksums, uniqueness, who may issue) live in documents.services;
a form only turns text into typed values and shows the service's refusals next to
the fields they concern.
"""

from django import forms
from django.utils.translation import gettext_lazy as _

from documents.imports import UPLOAD_EXTENSIONS
from documents.kinds import RULES, DocumentKind, kinds_for_institution
from documents.models import LossMark
from documents.services import DocumentData, GraduateData
from registry.errors import DomainError
from registry.uploads import upload_check

DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d.%m.%Y"]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class ServiceErrorsMixin:
    """Show a DomainError's field errors on the form's fields, the rest on top."""

    def add_domain_error(self, exc: DomainError) -> None:
        placed = False
        for field_name, messages in (exc.errors or {}).items():
            for message in messages:
                if field_name in self.fields:
                    self.add_error(field_name, message)
                    placed = True
                else:
                    self.add_error(None, message)
                    placed = True
        if not placed:
            self.add_error(None, exc.message)


class GraduateForm(ServiceErrorsMixin, forms.Form):
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    first_name = forms.CharField(label=_("First name"), max_length=100)
    middle_name = forms.CharField(label=_("Middle name"), max_length=100, required=False)
    birth_date = forms.DateField(label=_("Birth date"), input_formats=DATE_INPUT_FORMATS, widget=DateInput())
    snils = forms.CharField(
        label=_("SNILS"),
        max_length=20,
        help_text=_("11 digits, with or without separators: 112-233-445 95."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )

    def data_object(self) -> GraduateData:
        c = self.cleaned_data
        return GraduateData(
            last_name=c["last_name"],
            first_name=c["first_name"],
            middle_name=c["middle_name"],
            birth_date=c["birth_date"],
            snils=c["snils"],
        )


class GraduateSearchForm(forms.Form):
    q = forms.CharField(label=_("Name"), required=False, max_length=100)
    birth_date = forms.DateField(
        label=_("Birth date"), required=False, input_formats=DATE_INPUT_FORMATS, widget=DateInput()
    )
    snils = forms.CharField(
        label=_("SNILS (exact)"), required=False, max_length=20, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )


class DocumentForm(ServiceErrorsMixin, forms.Form):
    """A document's data; which fields matter depends on the kind (see static/js/cabinet.js).

    Grades come as parallel `grade_subject` / `grade_mark` inputs of a table.
    """

    kind = forms.ChoiceField(label=_("Kind"))
    series = forms.CharField(label=_("Series"), max_length=30, required=False)
    number = forms.CharField(label=_("Number"), max_length=30)
    registration_number = forms.CharField(label=_("Registration number"), max_length=30)
    issued_on = forms.DateField(label=_("Issue date"), input_formats=DATE_INPUT_FORMATS, widget=DateInput())
    programme_code = forms.CharField(
        label=_("Programme code (OKSO)"), max_length=8, required=False, help_text=_("NN.NN.NN")
    )
    programme_name = forms.CharField(label=_("Programme"), max_length=500, required=False)
    qualification = forms.CharField(label=_("Qualification"), max_length=300, required=False)
    hours = forms.IntegerField(label=_("Hours"), required=False, min_value=1)
    honours = forms.BooleanField(label=_("With honours"), required=False)

    FAMILY_FIELDS = {
        "programme_code": ("vocational", "higher"),
        "programme_name": ("vocational", "higher", "additional"),
        "qualification": ("vocational", "higher", "additional"),
        "hours": ("additional",),
        "honours": ("general", "vocational", "higher"),
    }

    def __init__(self, *args, institution, fixed_kind: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        kinds = [fixed_kind] if fixed_kind else kinds_for_institution(institution.kind)
        labels = dict(DocumentKind.choices)
        self.fields["kind"].choices = [(k, labels[k]) for k in kinds]
        self.grades = self._grades_from_input()
        for name, families in self.FAMILY_FIELDS.items():
            self.fields[name].widget.attrs["data-families"] = " ".join(families)

    def _grades_from_input(self) -> list[dict]:
        if not self.is_bound:
            return list(self.initial.get("grades") or [])
        subjects = self.data.getlist("grade_subject") if hasattr(self.data, "getlist") else []
        marks = self.data.getlist("grade_mark") if hasattr(self.data, "getlist") else []
        return [
            {"subject": s.strip(), "mark": m.strip()}
            for s, m in zip(subjects, marks, strict=False)
            if s.strip() or m.strip()
        ]

    def kind_families(self) -> dict:
        """{kind: family} for the kind selector's script."""
        return {kind: RULES[kind].family for kind, _label in self.fields["kind"].choices}

    def grade_rows(self) -> list[dict]:
        """The grades table: what was entered plus a few empty rows to fill."""
        return self.grades + [{"subject": "", "mark": ""}] * 3

    def data_object(self) -> DocumentData:
        c = self.cleaned_data
        family = RULES[c["kind"]].family
        return DocumentData(
            kind=c["kind"],
            series=c["series"],
            number=c["number"],
            registration_number=c["registration_number"],
            issued_on=c["issued_on"],
            programme_code=c["programme_code"] if family in ("vocational", "higher") else "",
            programme_name=c["programme_name"] if family != "general" else "",
            qualification=c["qualification"] if family != "general" else "",
            hours=c["hours"] if family == "additional" else None,
            honours=c["honours"] if family != "additional" else False,
            grades=self.grades if family != "additional" else [],
        )

    @classmethod
    def initial_from(cls, document) -> dict:
        return {
            name: getattr(document, name)
            for name in (
                "kind",
                "series",
                "number",
                "registration_number",
                "issued_on",
                "programme_code",
                "programme_name",
                "qualification",
                "hours",
                "honours",
                "grades",
            )
        }


class DocumentFilterForm(forms.Form):
    q = forms.CharField(label=_("Number or holder"), required=False, max_length=100)
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False)

    def __init__(self, *args, institution, **kwargs):
        super().__init__(*args, **kwargs)
        from documents.models import DocumentStatus

        labels = dict(DocumentKind.choices)
        self.fields["kind"].choices = [("", _("All kinds"))] + [
            (k, labels[k]) for k in kinds_for_institution(institution.kind)
        ]
        self.fields["status"].choices = [("", _("All statuses")), *DocumentStatus.choices]


class AnnulForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    loss_mark = forms.ChoiceField(label=_("Mark"), choices=LossMark.choices, required=False)


class DuplicateForm(ServiceErrorsMixin, forms.Form):
    """A duplicate carries new identifiers; everything else is the original's."""

    series = forms.CharField(label=_("Series"), max_length=30, required=False)
    number = forms.CharField(label=_("Number"), max_length=30)
    registration_number = forms.CharField(label=_("Registration number"), max_length=30)
    issued_on = forms.DateField(label=_("Issue date"), input_formats=DATE_INPUT_FORMATS, widget=DateInput())
    loss_mark = forms.ChoiceField(
        label=_("What happened to the original"),
        choices=[c for c in LossMark.choices if c[0]],
        initial=LossMark.LOST,
    )


class UploadForm(forms.Form):
    file = forms.FileField(label=_("File (CSV or XLSX)"))
    dry_run = forms.BooleanField(label=_("Check only (import nothing)"), required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            upload_check(upload, allowed_extensions=UPLOAD_EXTENSIONS)
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        return upload
