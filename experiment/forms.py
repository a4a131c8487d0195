"""Forms of the experiment admin pages: they only collect input for the services."""

from django import forms
from django.utils.translation import gettext_lazy as _

from experiment.models import Experiment
from experiment.services import MAX_INN_FILE_BYTES


class ExperimentChoiceForm(forms.Form):
    experiment = forms.ModelChoiceField(
        queryset=Experiment.objects.order_by("-year"), label=_("Experiment"), empty_label=None
    )


class InnFileForm(ExperimentChoiceForm):
    file = forms.FileField(
        label=_("CSV file of INNs"),
        help_text=_("One INN per line, or a column named “inn” or “ИНН”; UTF-8 or Windows-1251, “;” or “,” delimited."),
    )

    def clean_file(self):
        file = self.cleaned_data["file"]
        if file.size > MAX_INN_FILE_BYTES:
            raise forms.ValidationError(_("The file is too large (at most 1 MB)."))
        return file
