"""factory_boy factories for the domain; valid identifiers by construction."""

import datetime as dt
import random

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from documents.models import Document, DocumentStatus, Graduate
from documents.pii import snils_encrypt, snils_lookup_hash
from documents.validators import snils_check_digits
from experiment.models import Experiment, Participation, Stage
from institutions.models import Institution, Membership
from institutions.validators import inn10_check_digit, ogrn_check_digit

PASSWORD = "correct-horse-battery-staple"


def make_inn(n: int) -> str:
    first9 = f"77{n:07d}"
    return first9 + inn10_check_digit(first9)


def make_ogrn(n: int) -> str:
    first12 = f"102770{n:06d}"
    return first12 + ogrn_check_digit(first12)


def make_snils(n: int) -> str:
    first9 = f"{200000000 + n:09d}"
    return first9 + snils_check_digits(first9)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution

    full_name = factory.Sequence(lambda n: f"Муниципальное бюджетное общеобразовательное учреждение «Школа № {n}»")
    short_name = factory.Sequence(lambda n: f"Школа № {n}")
    kind = "school"
    ownership = "municipal"
    inn = factory.Sequence(lambda n: make_inn(n + 5000))
    ogrn = factory.Sequence(lambda n: make_ogrn(n + 5000))
    kpp = "770101001"
    region_code = "77"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    institution = factory.SubFactory(InstitutionFactory)
    role = "signer"


class ExperimentFactory(factory.django.DjangoModelFactory):
    """An experiment around today whose one stage allows forming."""

    class Meta:
        model = Experiment
        django_get_or_create = ("year",)
        skip_postgeneration_save = True

    year = factory.LazyFunction(lambda: timezone.localdate().year)
    title = factory.LazyAttribute(lambda e: f"Эксперимент {e.year}")
    starts_on = factory.LazyAttribute(lambda e: dt.date(e.year, 1, 1))
    ends_on = factory.LazyAttribute(lambda e: dt.date(e.year, 12, 31))
    purge_on = factory.LazyAttribute(lambda e: dt.date(e.year + 1, 1, 1))

    @factory.post_generation
    def stages(obj, create, extracted, **kwargs):
        if create and extracted is not False and not obj.stages.exists():
            Stage.objects.create(
                experiment=obj,
                number=1,
                title="Формирование",
                starts_on=obj.starts_on,
                ends_on=obj.ends_on,
                allows_forming=True,
                allows_transfer=True,
            )


class ParticipationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participation

    experiment = factory.SubFactory(ExperimentFactory)
    institution = factory.SubFactory(InstitutionFactory)


class GraduateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Graduate
        exclude = ("snils",)

    institution = factory.SubFactory(InstitutionFactory)
    last_name = factory.Iterator(["Иванов", "Петрова", "Сидоров", "Кузнецова"])
    first_name = factory.Iterator(["Иван", "Мария", "Пётр", "Анна"])
    middle_name = "Сергеевич"
    birth_date = dt.date(2007, 5, 17)
    snils = factory.Sequence(make_snils)
    snils_encrypted = factory.LazyAttribute(lambda g: snils_encrypt(g.snils))
    snils_hash = factory.LazyAttribute(lambda g: snils_lookup_hash(g.snils))


class DocumentFactory(factory.django.DjangoModelFactory):
    """A draft grade-11 certificate (school kinds) unless told otherwise."""

    class Meta:
        model = Document

    graduate = factory.SubFactory(GraduateFactory)
    institution = factory.SelfAttribute("graduate.institution")
    kind = "secondary_general_certificate"
    series = ""
    number = factory.Sequence(lambda n: f"{77000000000000 + n:014d}")
    registration_number = factory.Sequence(lambda n: f"R-{n}")
    issued_on = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=1))
    status = DocumentStatus.DRAFT
    grades = factory.LazyFunction(
        lambda: [{"subject": "Математика", "mark": "5"}, {"subject": "Русский язык", "mark": random.choice("45")}]
    )
