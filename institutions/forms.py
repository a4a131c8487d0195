from django import forms
from django.utils.translation import gettext_lazy as _


class ChooseInstitutionForm(forms.Form):
    """Pick one of the user's institutions; the choices are the user's memberships only."""

    institution = forms.TypedChoiceField(label=_("Institution"), coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["institution"].choices = [
            (m.institution_id, f"{m.institution.short_name} — {m.get_role_display()}") for m in memberships
        ]
