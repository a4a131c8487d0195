"""Admin actions the experiment adds to other apps' admins (the institution list)."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from experiment.forms import ExperimentChoiceForm
from experiment.models import Experiment
from experiment.services import participation_enrol_many

PREVIEW = 30


@admin.action(description=_("Enrol the selected institutions in an experiment…"))
def enrol_in_experiment(modeladmin, request, queryset):
    """Ask which experiment, then enrol the selected (or all filtered) institutions in it."""
    if not request.user.has_perm("experiment.add_participation"):
        modeladmin.message_user(request, _("You may not enrol institutions."), messages.ERROR)
        return None
    form = ExperimentChoiceForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        experiment = form.cleaned_data["experiment"]
        result = participation_enrol_many(
            experiment=experiment, institution_ids=queryset.values_list("pk", flat=True), user=request.user
        )
        modeladmin.message_user(
            request,
            ngettext(
                "Enrolled %(n)d institution in the %(year)s experiment; %(m)d already enrolled.",
                "Enrolled %(n)d institutions in the %(year)s experiment; %(m)d already enrolled.",
                result.enrolled,
            )
            % {"n": result.enrolled, "year": experiment.year, "m": result.already_enrolled},
            messages.SUCCESS,
        )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Enrol institutions in an experiment"),
        "opts": modeladmin.model._meta,
        "form": form,
        "count": queryset.count(),
        "preview": queryset.order_by("short_name")[:PREVIEW],
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "has_experiments": Experiment.objects.exists(),
    }
    return TemplateResponse(request, "admin/experiment/enrol_action.html", context)


class ParticipationFilter(admin.SimpleListFilter):
    """Filter institutions by whether they take part in an experiment."""

    title = _("experiment participation")
    parameter_name = "experiment"

    def lookups(self, request, model_admin):
        choices = []
        for year in Experiment.objects.order_by("-year").values_list("year", flat=True):
            choices.append((str(year), _("enrolled in %(year)s") % {"year": year}))
            choices.append((f"-{year}", _("not enrolled in %(year)s") % {"year": year}))
        return choices

    def queryset(self, request, queryset):
        value = self.value() or ""
        year = value.lstrip("-")
        if not year.isdigit():
            return queryset
        if value.startswith("-"):
            return queryset.exclude(participations__experiment__year=int(year))
        return queryset.filter(participations__experiment__year=int(year))
