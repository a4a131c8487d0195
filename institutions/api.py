"""The institution directory for partners: any key reads it."""

import django_filters
from django.db.models import Exists, OuterRef, Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from experiment.models import Participation
from institutions.models import Institution, InstitutionKind, Ownership
from registry.api import JSON_PARSERS, JSON_RENDERERS
from registry.api.errors import AUTH_ERRORS, error_responses
from registry.api.pagination import IdCursorPagination
from registry.api.permissions import IsPartner


class InstitutionSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region_code", read_only=True)
    experiments = serializers.SerializerMethodField(help_text=_("Years of the experiments it is enrolled in."))

    class Meta:
        model = Institution
        fields = ["id", "inn", "ogrn", "kpp", "full_name", "short_name", "kind", "ownership", "region", "experiments"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_experiments(self, institution) -> list[int]:
        # Prefetched by the view: one query for the whole page.
        return sorted(p.experiment.year for p in institution.participations.all())


class InstitutionFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=InstitutionKind.choices)
    ownership = django_filters.ChoiceFilter(choices=Ownership.choices)
    region = django_filters.CharFilter(field_name="region_code", label=_("Region code (two digits)"))
    inn = django_filters.CharFilter(field_name="inn")
    experiment = django_filters.NumberFilter(method="filter_experiment", label=_("Enrolled in the experiment of year"))

    class Meta:
        model = Institution
        fields = []

    def filter_experiment(self, queryset, name, value):
        # EXISTS rather than a join, so an institution is listed once.
        enrolled = Participation.objects.filter(institution=OuterRef("pk"), experiment__year=value)
        return queryset.filter(Exists(enrolled))


@extend_schema_view(
    list=extend_schema(
        summary=_("The institution directory"),
        description=_("Every institution, by id, cursor-paginated; filter by kind, region, experiment year."),
        responses={200: InstitutionSerializer(many=True), **error_responses(400, *AUTH_ERRORS, 404)},
    ),
    retrieve=extend_schema(
        summary=_("One institution"),
        responses={200: InstitutionSerializer, **error_responses(400, *AUTH_ERRORS, 404)},
    ),
)
class InstitutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = InstitutionSerializer
    renderer_classes = JSON_RENDERERS
    parser_classes = JSON_PARSERS
    permission_classes = [IsPartner]
    pagination_class = IdCursorPagination
    filterset_class = InstitutionFilter
    lookup_value_regex = r"[0-9]{1,18}"
    queryset = Institution.objects.prefetch_related(
        Prefetch("participations", queryset=Participation.objects.select_related("experiment"))
    )
