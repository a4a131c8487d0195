"""The demo data `manage.py seed_demo` loads (CONTRACTS.md, "Demo data").

Everything is derived deterministically from fixed seeds, keyed by INN and login,
so a second run finds every row already there and changes nothing. Thousands of
rows are written with bulk_create rather than one service call each (which would
take minutes), but they are the rows the services would write: SNILS encrypted
with its keyed hash, issued documents signed with the institution's Ed25519 key
over documents.signing.build_payload, a delivery row per publication or
withdrawal, and the issuance recorded in each institution's hash-chained history.
"""

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone
from django.utils.translation import gettext

from documents.history import events_record
from documents.kinds import DocumentKind, Family, rule_for
from documents.models import (
    CopyMark,
    Delivery,
    DeliveryAction,
    DeliveryState,
    Document,
    DocumentStatus,
    Graduate,
    LossMark,
    ReplacementReason,
)
from documents.pii import snils_encrypt, snils_lookup_hash
from documents.signing import build_payload, sign_payload
from documents.status_list import status_list_indexes_new
from documents.validators import snils_check_digits
from experiment.models import Experiment, Participation, Stage
from institutions.keys import signing_key_current
from institutions.models import Institution, InstitutionKind, Membership, Ownership, SigningKey
from institutions.validators import inn10_check_digit, ogrn_check_digit
from registry.actors import Actor
from registry.otp import demo_totp_device, ensure_demo_totp, totp_secret_and_uri

DEFAULT_PASSWORD = "registry-demo"
OPERATORS_GROUP = "Ministry operators"  # created by registry/migrations/0001

# The 2024 reference experiment's participants (DESIGN.md); the demo has exactly these.
COUNTS = {
    InstitutionKind.SCHOOL: 277,
    InstitutionKind.COLLEGE: 260,
    InstitutionKind.UNIVERSITY: 61,
    InstitutionKind.ADDITIONAL: 225,
}

# --- Fixed logins and institutions (CONTRACTS.md) -----------------------------


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str  # "operator", "clerk" or "signer"
    inn: str = ""


LOGINS = [
    DemoLogin("operator", "operator"),
    DemoLogin("school.clerk", "clerk", "7701000019"),
    DemoLogin("school.signer", "signer", "7701000019"),
    DemoLogin("school2.signer", "signer", "7701000026"),
    DemoLogin("college.signer", "signer", "7701000033"),
    DemoLogin("university.signer", "signer", "7701000040"),
    DemoLogin("additional.signer", "signer", "7701000058"),
    DemoLogin("regular.signer", "signer", "7701000065"),
]

# The school outside the demo (current-year) experiment: it works in regular
# operation. It did take part in 2024, so the 2024 participants stay 277/260/61/225.
REGULAR_INN = "7701000065"

# inn -> (kind, ownership, full name, short name, number of documents)
FIXED = {
    "7701000019": (
        InstitutionKind.SCHOOL,
        Ownership.REGIONAL,
        "Государственное бюджетное общеобразовательное учреждение города Москвы «Школа № 1519»",
        "ГБОУ Школа № 1519",
        80,
    ),
    "7701000026": (
        InstitutionKind.SCHOOL,
        Ownership.REGIONAL,
        "Государственное бюджетное общеобразовательное учреждение города Москвы «Школа № 2086»",
        "ГБОУ Школа № 2086",
        40,
    ),
    "7701000033": (
        InstitutionKind.COLLEGE,
        Ownership.REGIONAL,
        "Государственное бюджетное профессиональное образовательное учреждение города Москвы «Колледж связи № 54»",
        "ГБПОУ «Колледж связи № 54»",
        60,
    ),
    "7701000040": (
        InstitutionKind.UNIVERSITY,
        Ownership.FEDERAL,
        "Федеральное государственное автономное образовательное учреждение высшего образования "
        "«Московский государственный университет цифровых технологий»",
        "ФГАОУ ВО «МГУЦТ»",
        60,
    ),
    "7701000058": (
        InstitutionKind.ADDITIONAL,
        Ownership.PRIVATE,
        "Автономная некоммерческая организация дополнительного профессионального образования "
        "«Московский центр профессионального развития»",
        "АНО ДПО «МЦПР»",
        50,
    ),
    REGULAR_INN: (
        InstitutionKind.SCHOOL,
        Ownership.PRIVATE,
        "Частное общеобразовательное учреждение «Школа «Образование плюс»»",
        "ЧОУ «Школа «Образование плюс»»",
        12,
    ),
}

# How many other institutions get documents, and how many each (a range).
OTHER_WITH_DOCUMENTS = 150
OTHER_DOCUMENTS = (12, 22)

# --- Reference tables ---------------------------------------------------------

# (region code, city, adjective formed from the city)
REGIONS = [
    ("77", "Москва", "Московский"),
    ("78", "Санкт-Петербург", "Санкт-Петербургский"),
    ("50", "Подольск", "Подольский"),
    ("16", "Казань", "Казанский"),
    ("02", "Уфа", "Уфимский"),
    ("54", "Новосибирск", "Новосибирский"),
    ("66", "Екатеринбург", "Екатеринбургский"),
    ("52", "Нижний Новгород", "Нижегородский"),
    ("63", "Самара", "Самарский"),
    ("61", "Ростов-на-Дону", "Ростовский"),
    ("23", "Краснодар", "Краснодарский"),
    ("24", "Красноярск", "Красноярский"),
    ("74", "Челябинск", "Челябинский"),
    ("59", "Пермь", "Пермский"),
    ("36", "Воронеж", "Воронежский"),
    ("34", "Волгоград", "Волгоградский"),
    ("55", "Омск", "Омский"),
    ("72", "Тюмень", "Тюменский"),
    ("38", "Иркутск", "Иркутский"),
    ("25", "Владивосток", "Владивостокский"),
    ("39", "Калининград", "Калининградский"),
    ("70", "Томск", "Томский"),
    ("76", "Ярославль", "Ярославский"),
    ("14", "Якутск", "Якутский"),
    ("10", "Петрозаводск", "Петрозаводский"),
    ("86", "Сургут", "Сургутский"),
]

OWNERSHIP_SHARES = {
    InstitutionKind.SCHOOL: {"municipal": 0.80, "regional": 0.10, "private": 0.07, "federal": 0.03},
    InstitutionKind.COLLEGE: {"regional": 0.75, "federal": 0.10, "private": 0.10, "municipal": 0.05},
    InstitutionKind.UNIVERSITY: {"federal": 0.75, "regional": 0.10, "private": 0.12, "municipal": 0.03},
    InstitutionKind.ADDITIONAL: {"private": 0.40, "municipal": 0.30, "regional": 0.22, "federal": 0.08},
}

PRIVATE_BRANDS = [
    "Наследие",
    "Перспектива",
    "Вектор",
    "Траектория",
    "Эврика",
    "Открытие",
    "Горизонт",
    "Лидер",
    "Интеллект",
    "Созвездие",
    "Альтернатива",
    "Успех",
]

SCHOOL_TYPES = [
    ("Средняя общеобразовательная школа № {n}", "СОШ № {n}"),
    ("Средняя общеобразовательная школа № {n}", "СОШ № {n}"),
    ("Средняя общеобразовательная школа № {n} с углублённым изучением отдельных предметов", "СОШ № {n} с УИОП"),
    ("Гимназия № {n}", "Гимназия № {n}"),
    ("Лицей № {n}", "Лицей № {n}"),
    ("Основная общеобразовательная школа № {n}", "ООШ № {n}"),
]

COLLEGE_PROFILES = [
    "колледж информационных технологий",
    "педагогический колледж",
    "медицинский колледж",
    "политехнический колледж",
    "строительный техникум",
    "колледж сервиса и туризма",
    "индустриальный техникум",
    "торгово-экономический колледж",
    "колледж транспорта",
    "аграрный техникум",
    "энергетический техникум",
    "колледж культуры и искусств",
]

UNIVERSITY_PROFILES = [
    "государственный университет",
    "государственный технический университет",
    "государственный педагогический университет",
    "государственный медицинский университет",
    "государственный аграрный университет",
    "государственный экономический университет",
    "государственный технологический университет",
    "государственный архитектурно-строительный университет",
]

ADDITIONAL_TYPES = {
    "regional": [
        "институт развития образования",
        "учебно-методический центр",
        "центр непрерывного повышения профессионального мастерства",
    ],
    "federal": ["институт повышения квалификации", "межотраслевой учебный центр"],
    "municipal": ["Центр детского творчества № {n}", "Дом детского творчества № {n}", "Детская школа искусств № {n}"],
    "private": [
        "Учебный центр «{brand}»",
        "Академия профессионального развития «{brand}»",
        "Школа программирования «{brand}»",
    ],
}

OWNERSHIP_FORMS = {
    # kind -> ownership -> (full form, short form)
    InstitutionKind.SCHOOL: {
        "municipal": ("Муниципальное бюджетное общеобразовательное учреждение", "МБОУ"),
        "regional": ("Государственное бюджетное общеобразовательное учреждение", "ГБОУ"),
        "federal": ("Федеральное государственное казённое общеобразовательное учреждение", "ФГКОУ"),
        "private": ("Частное общеобразовательное учреждение", "ЧОУ"),
    },
    InstitutionKind.COLLEGE: {
        "regional": ("Государственное бюджетное профессиональное образовательное учреждение", "ГБПОУ"),
        "federal": ("Федеральное государственное бюджетное профессиональное образовательное учреждение", "ФГБПОУ"),
        "municipal": ("Муниципальное бюджетное профессиональное образовательное учреждение", "МБПОУ"),
        "private": ("Частное профессиональное образовательное учреждение", "ЧПОУ"),
    },
    InstitutionKind.UNIVERSITY: {
        "federal": ("Федеральное государственное бюджетное образовательное учреждение высшего образования", "ФГБОУ ВО"),
        "regional": ("Государственное автономное образовательное учреждение высшего образования", "ГАОУ ВО"),
        "municipal": ("Муниципальное бюджетное образовательное учреждение высшего образования", "МБОУ ВО"),
        "private": ("Автономная некоммерческая организация высшего образования", "АНО ВО"),
    },
    InstitutionKind.ADDITIONAL: {
        "regional": ("Государственное автономное учреждение дополнительного профессионального образования", "ГАУ ДПО"),
        "federal": (
            "Федеральное государственное бюджетное учреждение дополнительного профессионального образования",
            "ФГБУ ДПО",
        ),
        "municipal": ("Муниципальное автономное учреждение дополнительного образования", "МАУ ДО"),
        "private": ("Автономная некоммерческая организация дополнительного профессионального образования", "АНО ДПО"),
    },
}

# (male, female)
LAST_NAMES = [
    ("Иванов", "Иванова"),
    ("Смирнов", "Смирнова"),
    ("Кузнецов", "Кузнецова"),
    ("Попов", "Попова"),
    ("Васильев", "Васильева"),
    ("Петров", "Петрова"),
    ("Соколов", "Соколова"),
    ("Михайлов", "Михайлова"),
    ("Новиков", "Новикова"),
    ("Фёдоров", "Фёдорова"),
    ("Морозов", "Морозова"),
    ("Волков", "Волкова"),
    ("Алексеев", "Алексеева"),
    ("Лебедев", "Лебедева"),
    ("Семёнов", "Семёнова"),
    ("Егоров", "Егорова"),
    ("Павлов", "Павлова"),
    ("Козлов", "Козлова"),
    ("Степанов", "Степанова"),
    ("Николаев", "Николаева"),
    ("Орлов", "Орлова"),
    ("Андреев", "Андреева"),
    ("Макаров", "Макарова"),
    ("Никитин", "Никитина"),
    ("Захаров", "Захарова"),
    ("Зайцев", "Зайцева"),
    ("Соловьёв", "Соловьёва"),
    ("Борисов", "Борисова"),
    ("Яковлев", "Яковлева"),
    ("Григорьев", "Григорьева"),
    ("Романов", "Романова"),
    ("Воробьёв", "Воробьёва"),
    ("Сергеев", "Сергеева"),
    ("Кузьмин", "Кузьмина"),
    ("Фролов", "Фролова"),
    ("Александров", "Александрова"),
    ("Дмитриев", "Дмитриева"),
    ("Королёв", "Королёва"),
    ("Гусев", "Гусева"),
    ("Киселёв", "Киселёва"),
    ("Ильин", "Ильина"),
    ("Максимов", "Максимова"),
    ("Поляков", "Полякова"),
    ("Сорокин", "Сорокина"),
    ("Виноградов", "Виноградова"),
    ("Ковалёв", "Ковалёва"),
    ("Белов", "Белова"),
    ("Медведев", "Медведева"),
    ("Антонов", "Антонова"),
    ("Тарасов", "Тарасова"),
    ("Жуков", "Жукова"),
    ("Баранов", "Баранова"),
    ("Высоцкий", "Высоцкая"),
    ("Гарипов", "Гарипова"),
    ("Хабибуллин", "Хабибуллина"),
    ("Ким", "Ким"),
    ("Шевченко", "Шевченко"),
    ("Бондаренко", "Бондаренко"),
    ("Сафин", "Сафина"),
    ("Абрамов", "Абрамова"),
]
MALE_NAMES = [
    "Александр",
    "Максим",
    "Михаил",
    "Артём",
    "Даниил",
    "Иван",
    "Дмитрий",
    "Кирилл",
    "Андрей",
    "Егор",
    "Никита",
    "Илья",
    "Алексей",
    "Матвей",
    "Тимофей",
    "Роман",
    "Владимир",
    "Ярослав",
    "Фёдор",
    "Георгий",
    "Константин",
    "Лев",
    "Марк",
    "Тимур",
    "Руслан",
    "Сергей",
    "Павел",
    "Арсений",
    "Глеб",
    "Денис",
]
FEMALE_NAMES = [
    "Анастасия",
    "Мария",
    "Анна",
    "Виктория",
    "Екатерина",
    "Наталья",
    "Марина",
    "Полина",
    "София",
    "Дарья",
    "Алиса",
    "Ксения",
    "Александра",
    "Елизавета",
    "Вероника",
    "Арина",
    "Варвара",
    "Ульяна",
    "Ева",
    "Валерия",
    "Милана",
    "Юлия",
    "Ольга",
    "Татьяна",
    "Елена",
    "Ирина",
    "Светлана",
    "Алина",
    "Диана",
    "Кристина",
]
PATRONYMICS = [
    ("Александрович", "Александровна"),
    ("Сергеевич", "Сергеевна"),
    ("Андреевич", "Андреевна"),
    ("Дмитриевич", "Дмитриевна"),
    ("Алексеевич", "Алексеевна"),
    ("Владимирович", "Владимировна"),
    ("Михайлович", "Михайловна"),
    ("Николаевич", "Николаевна"),
    ("Евгеньевич", "Евгеньевна"),
    ("Игоревич", "Игоревна"),
    ("Олегович", "Олеговна"),
    ("Викторович", "Викторовна"),
    ("Павлович", "Павловна"),
    ("Юрьевич", "Юрьевна"),
    ("Иванович", "Ивановна"),
    ("Романович", "Романовна"),
]

SUBJECTS_9 = [
    "Русский язык",
    "Литература",
    "Алгебра",
    "Геометрия",
    "Информатика",
    "История",
    "Обществознание",
    "География",
    "Биология",
    "Физика",
    "Химия",
    "Иностранный язык (английский)",
    "Физическая культура",
]
SUBJECTS_11 = [
    "Русский язык",
    "Литература",
    "Математика",
    "Информатика",
    "История",
    "Обществознание",
    "География",
    "Биология",
    "Физика",
    "Химия",
    "Иностранный язык (английский)",
    "Физическая культура",
    "Основы безопасности и защиты Родины",
]

# kind -> [(OKSO code, programme, qualification)]
PROGRAMMES = {
    DocumentKind.VOCATIONAL_DIPLOMA: [
        ("09.02.07", "Информационные системы и программирование", "Программист"),
        ("38.02.01", "Экономика и бухгалтерский учёт (по отраслям)", "Бухгалтер"),
        ("44.02.02", "Преподавание в начальных классах", "Учитель начальных классов"),
        ("34.02.01", "Сестринское дело", "Медицинская сестра / медицинский брат"),
        ("08.02.01", "Строительство и эксплуатация зданий и сооружений", "Техник"),
        ("43.02.15", "Поварское и кондитерское дело", "Специалист по поварскому и кондитерскому делу"),
        ("40.02.04", "Юриспруденция", "Юрист"),
    ],
    DocumentKind.BACHELOR_DIPLOMA: [
        ("09.03.01", "Информатика и вычислительная техника", "Бакалавр"),
        ("38.03.01", "Экономика", "Бакалавр"),
        ("44.03.01", "Педагогическое образование", "Бакалавр"),
        ("40.03.01", "Юриспруденция", "Бакалавр"),
        ("01.03.02", "Прикладная математика и информатика", "Бакалавр"),
        ("13.03.02", "Электроэнергетика и электротехника", "Бакалавр"),
    ],
    DocumentKind.SPECIALIST_DIPLOMA: [
        ("31.05.01", "Лечебное дело", "Врач-лечебник"),
        ("10.05.01", "Компьютерная безопасность", "Специалист по защите информации"),
        ("21.05.04", "Горное дело", "Горный инженер (специалист)"),
    ],
    DocumentKind.MASTER_DIPLOMA: [
        ("09.04.01", "Информатика и вычислительная техника", "Магистр"),
        ("38.04.02", "Менеджмент", "Магистр"),
        ("44.04.01", "Педагогическое образование", "Магистр"),
    ],
}
# kind -> [(programme, qualification, hours)]
DPO_PROGRAMMES = {
    DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE: [
        ("Цифровая образовательная среда: инструменты педагога", "", 72),
        ("Информационная безопасность в организации", "", 72),
        ("Управление проектами", "", 108),
        ("Охрана труда", "", 40),
        ("Оказание первой помощи", "", 36),
    ],
    DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA: [
        ("Менеджмент в образовании", "Менеджер в сфере образования", 520),
        ("Педагогика дополнительного образования", "Педагог дополнительного образования", 288),
        ("Бухгалтерский учёт, анализ и аудит", "Бухгалтер", 504),
        ("Разработка веб-приложений", "Веб-разработчик", 256),
    ],
    DocumentKind.ADDITIONAL_EDUCATION_CERTIFICATE: [
        ("Робототехника и программирование", "", 144),
        ("Английский язык для подростков", "", 72),
        ("Шахматы", "", 72),
        ("Изобразительное искусство", "", 108),
    ],
}

# institution kind -> [(document kind, weight)]
KIND_MIX = {
    InstitutionKind.SCHOOL: [
        (DocumentKind.BASIC_GENERAL_CERTIFICATE, 45),
        (DocumentKind.SECONDARY_GENERAL_CERTIFICATE, 55),
    ],
    InstitutionKind.COLLEGE: [
        (DocumentKind.VOCATIONAL_DIPLOMA, 80),
        (DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE, 12),
        (DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA, 8),
    ],
    InstitutionKind.UNIVERSITY: [
        (DocumentKind.BACHELOR_DIPLOMA, 55),
        (DocumentKind.SPECIALIST_DIPLOMA, 15),
        (DocumentKind.MASTER_DIPLOMA, 20),
        (DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE, 5),
        (DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA, 5),
    ],
    InstitutionKind.ADDITIONAL: [
        (DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE, 45),
        (DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA, 30),
        (DocumentKind.ADDITIONAL_EDUCATION_CERTIFICATE, 25),
    ],
}
# Age at issue by document kind: (youngest, oldest)
AGES = {
    DocumentKind.BASIC_GENERAL_CERTIFICATE: (15, 16),
    DocumentKind.SECONDARY_GENERAL_CERTIFICATE: (17, 18),
    DocumentKind.VOCATIONAL_DIPLOMA: (19, 21),
    DocumentKind.BACHELOR_DIPLOMA: (21, 23),
    DocumentKind.SPECIALIST_DIPLOMA: (22, 24),
    DocumentKind.MASTER_DIPLOMA: (23, 27),
    DocumentKind.QUALIFICATION_UPGRADE_CERTIFICATE: (25, 58),
    DocumentKind.PROFESSIONAL_RETRAINING_DIPLOMA: (24, 50),
    DocumentKind.ADDITIONAL_EDUCATION_CERTIFICATE: (10, 17),
}
# When in the year each kind is usually issued: (month, day).
USUAL_ISSUE = {
    Family.GENERAL: (6, 24),
    Family.VOCATIONAL: (6, 30),
    Family.HIGHER: (7, 5),
}
ANNUL_REASONS = [
    "Ошибка в дате рождения выпускника",
    "Ошибка в написании фамилии",
    "Неверно указан код специальности",
    "Документ выдан ошибочно",
]


# --- Calendar ------------------------------------------------------------------


@dataclass(frozen=True)
class StageSpec:
    number: int
    title: str
    starts_on: dt.date
    ends_on: dt.date
    allows_forming: bool
    allows_transfer: bool


def experiment_calendar(year: int, *, today: dt.date) -> list[StageSpec]:
    """Return the stages of `year`'s experiment on the 2024 calendar.

    Stages 1 (forming) and 2 (transfer) share 15 March – 30 September, stage 3 runs
    1 October – 31 December. When `today` falls in `year` before the first stage,
    stage 1 starts on 1 January instead, so the demo can always form documents.
    """
    first = dt.date(year, 3, 15)
    if today.year == year and today < first:
        first = dt.date(year, 1, 1)
    return [
        StageSpec(1, "Формирование цифровых документов об образовании", first, dt.date(year, 9, 30), True, False),
        StageSpec(
            2, "Передача документов в личные кабинеты ЕПГУ", dt.date(year, 3, 15), dt.date(year, 9, 30), True, True
        ),
        StageSpec(
            3, "Ввод реестра в промышленную эксплуатацию", dt.date(year, 10, 1), dt.date(year, 12, 31), True, True
        ),
    ]


def experiment_ensure(year: int, *, today: dt.date) -> tuple[Experiment, bool]:
    """Return `year`'s experiment, creating it with its calendar if missing.

    An existing experiment is left as it is: operators may have edited it.
    """
    stages = experiment_calendar(year, today=today)
    experiment, created = Experiment.objects.get_or_create(
        year=year,
        defaults={
            "title": f"Эксперимент по цифровым документам об образовании {year}",
            "starts_on": min(st.starts_on for st in stages),
            "ends_on": dt.date(year, 12, 31),
            "purge_on": dt.date(year + 1, 1, 1),
            "target_school": COUNTS[InstitutionKind.SCHOOL],
            "target_college": COUNTS[InstitutionKind.COLLEGE],
            "target_university": COUNTS[InstitutionKind.UNIVERSITY],
            "target_additional": COUNTS[InstitutionKind.ADDITIONAL],
        },
    )
    if created:
        Stage.objects.bulk_create(
            Stage(
                experiment=experiment,
                number=st.number,
                title=st.title,
                starts_on=st.starts_on,
                ends_on=st.ends_on,
                allows_forming=st.allows_forming,
                allows_transfer=st.allows_transfer,
            )
            for st in stages
        )
    return experiment, created


# --- Institutions --------------------------------------------------------------


def _inn(region: str, inspection: int, serial: int) -> str:
    first9 = f"{region}{inspection:02d}{serial:05d}"
    return first9 + inn10_check_digit(first9)


def _ogrn(year: int, region: str, inspection: int, serial: int) -> str:
    first12 = f"1{year % 100:02d}{region}{inspection:02d}{serial:05d}"
    return first12 + ogrn_check_digit(first12)


def _quota(shares: dict[str, float], total: int) -> list[str]:
    """Split `total` by `shares`, every ownership at least once, largest share absorbing rounding."""
    counts = {name: max(1, round(share * total)) for name, share in shares.items()}
    largest = max(shares, key=shares.get)
    counts[largest] += total - sum(counts.values())
    return [name for name, n in counts.items() for _ in range(n)]


def institution_specs() -> list[dict]:
    """Return the 823 demo institutions as field dicts, the fixed ones first."""
    specs = []
    for serial, (inn, (kind, ownership, full_name, short_name, _docs)) in enumerate(FIXED.items(), start=1):
        specs.append(
            {
                "inn": inn,
                "ogrn": _ogrn(2002, "77", 1, serial),
                "kpp": "770101001",
                "region_code": "77",
                "kind": kind,
                "ownership": ownership,
                "full_name": full_name,
                "short_name": short_name,
            }
        )
    rng = random.Random(20240315)
    serial = 10000
    used_names: set[tuple[str, str]] = set()
    numbers: dict[str, int] = {}
    for kind, total in COUNTS.items():
        remaining = total - sum(1 for spec in specs if spec["kind"] == kind)
        ownerships = _quota(OWNERSHIP_SHARES[kind], remaining)
        rng.shuffle(ownerships)
        for ownership in ownerships:
            serial += 1
            region, city, adjective = rng.choice(REGIONS)
            inspection = rng.randint(1, 30)
            full_form, short_form = OWNERSHIP_FORMS[kind][ownership]
            for _attempt in range(8):
                numbers[city] = numbers.get(city, rng.randint(1, 40)) + rng.randint(1, 9)
                own, short_own = _own_name(kind, ownership, rng, city, adjective, numbers[city])
                if (full_form, own) not in used_names:
                    break
            else:
                # This city has every name of the kind already: number a further one.
                own, short_own = f"{own} № {serial - 10000}", f"{short_own} № {serial - 10000}"
            used_names.add((full_form, own))
            specs.append(
                {
                    "inn": _inn(region, inspection, serial),
                    "ogrn": _ogrn(rng.randint(2002, 2021), region, inspection, serial),
                    "kpp": f"{region}{inspection:02d}01001",
                    "region_code": region,
                    "kind": kind,
                    "ownership": ownership,
                    "full_name": f"{full_form} «{own}»",
                    "short_name": f"{short_form} «{short_own}»",
                }
            )
    return specs


def _own_name(kind, ownership, rng, city: str, adjective: str, n: int) -> tuple[str, str]:
    """Return the institution's own name (in the quotes) and its short form."""
    if kind == InstitutionKind.SCHOOL:
        if ownership == "private":
            brand = rng.choice(PRIVATE_BRANDS)
            return f"Школа «{brand}» г. {city}", f"Школа «{brand}» г. {city}"
        if ownership == "federal":
            name = f"{adjective} кадетский корпус"
            return name, name
        full, short = rng.choice(SCHOOL_TYPES)
        return f"{full.format(n=n)} г. {city}", f"{short.format(n=n)} г. {city}"
    if kind == InstitutionKind.COLLEGE:
        name = f"{adjective} {rng.choice(COLLEGE_PROFILES)}"
        if ownership == "private":
            name = f"{name} «{rng.choice(PRIVATE_BRANDS)}»"
        return name, name
    if kind == InstitutionKind.UNIVERSITY:
        if ownership == "private":
            name = f"{adjective} институт управления и права «{rng.choice(PRIVATE_BRANDS)}»"
        elif ownership == "municipal":
            name = f"{adjective} муниципальный институт экономики и управления"
        elif ownership == "regional":
            name = f"{adjective} городской {rng.choice(['педагогический', 'гуманитарный', 'технический'])} университет"
        else:
            name = f"{adjective} {rng.choice(UNIVERSITY_PROFILES)}"
        return name, name
    template = rng.choice(ADDITIONAL_TYPES[ownership])
    name = template.format(n=n, brand=rng.choice(PRIVATE_BRANDS))
    if ownership in ("regional", "federal"):
        name = f"{adjective} {name}"
    elif ownership == "municipal":
        name = f"{name} г. {city}"
    return name, name


# --- Graduates and documents ----------------------------------------------------


@dataclass
class _Batch:
    """Rows generated for the institutions still without documents."""

    graduates: list = field(default_factory=list)
    originals: list = field(default_factory=list)  # (Document, final status, annul reason or "")
    duplicates: list = field(default_factory=list)  # (Document, original Document)


def _snils(index: int, n: int) -> str:
    first9 = f"{123_000_000 + index * 1000 + n:09d}"
    return first9 + snils_check_digits(first9)


def _person(rng: random.Random, kind: str, issued_on: dt.date) -> dict:
    male = rng.random() < 0.5
    last = rng.choice(LAST_NAMES)[0 if male else 1]
    first = rng.choice(MALE_NAMES if male else FEMALE_NAMES)
    middle = rng.choice(PATRONYMICS)[0 if male else 1]
    youngest, oldest = AGES[kind]
    age_days = rng.randint(youngest * 365, oldest * 365 + 364)
    return {
        "last_name": last,
        "first_name": first,
        "middle_name": middle,
        "birth_date": issued_on - dt.timedelta(days=age_days),
    }


def _issue_date(rng: random.Random, kind: str, *, year_start: dt.date, today: dt.date) -> dt.date:
    family = rule_for(kind).family
    if family in USUAL_ISSUE:
        month, day = USUAL_ISSUE[family]
        usual = dt.date(today.year, month, day) + dt.timedelta(days=rng.randint(-5, 5))
    else:
        usual = year_start + dt.timedelta(days=rng.randint(0, 364))
    return max(year_start, min(usual, today - dt.timedelta(days=rng.randint(0, 3))))


def _identifiers(kind: str, region: str, index: int, n: int, yy: int) -> tuple[str, str, str]:
    """Return (series, number, registration number), unique across the whole demo.

    `index` (the institution's place in the demo) makes them unique between
    institutions, `n` within one.
    """
    rule = rule_for(kind)
    if rule.family == Family.GENERAL:
        return "", f"{region}{index:04d}{yy:02d}{n:06d}", f"{yy:02d}-{n:05d}"
    if rule.series_digits:
        return f"{region}{index:04d}", f"{yy:02d}{n:05d}", f"{yy:02d}/{n:05d}"
    return "", f"{index:04d}-{yy:02d}/{n:05d}", f"{yy:02d}-{n:05d}"


def _document_fields(rng: random.Random, kind: str) -> dict:
    rule = rule_for(kind)
    if rule.family == Family.GENERAL:
        subjects = SUBJECTS_9 if kind == DocumentKind.BASIC_GENERAL_CERTIFICATE else SUBJECTS_11
        excellent = rng.random() < 0.12
        grades = [{"subject": s, "mark": "5" if excellent else rng.choice("3445")} for s in subjects]
        return {"grades": grades, "honours": excellent}
    if kind in PROGRAMMES:
        code, name, qualification = rng.choice(PROGRAMMES[kind])
        return {
            "programme_code": code,
            "programme_name": name,
            "qualification": qualification,
            "honours": rng.random() < 0.1,
            "grades": [{"subject": "Государственная итоговая аттестация", "mark": rng.choice(["отлично", "хорошо"])}],
        }
    name, qualification, hours = rng.choice(DPO_PROGRAMMES[kind])
    return {"programme_name": name, "qualification": qualification, "hours": hours}


def _plan_institution(batch: _Batch, institution: Institution, index: int, count: int, today: dt.date) -> None:
    """Generate `count` documents (and their graduates) for one institution."""
    rng = random.Random(f"seed-demo:{institution.inn}")
    kinds, weights = zip(*KIND_MIX[institution.kind], strict=True)
    year_start = dt.date(today.year, 1, 1)
    yy = today.year % 100
    region = institution.region_code
    for n in range(1, count + 1):
        kind = rng.choices(kinds, weights)[0]
        issued_on = _issue_date(rng, kind, year_start=year_start, today=today)
        snils = _snils(index, n)
        graduate = Graduate(
            institution=institution,
            snils_encrypted=snils_encrypt(snils),
            snils_hash=snils_lookup_hash(snils),
            **_person(rng, kind, issued_on),
        )
        batch.graduates.append(graduate)
        series, number, registration_number = _identifiers(kind, region, index, n, yy)
        document = Document(
            institution=institution,
            graduate=graduate,
            kind=kind,
            series=series,
            number=number,
            registration_number=registration_number,
            issued_on=issued_on,
            status=DocumentStatus.DRAFT,
            **_document_fields(rng, kind),
        )
        roll = rng.random()
        if roll < 0.12:
            batch.originals.append((document, DocumentStatus.DRAFT, ""))
        elif roll < 0.18:
            batch.originals.append((document, DocumentStatus.ANNULLED, rng.choice(ANNUL_REASONS)))
        elif roll < 0.23:
            # Lost or destroyed original, replaced by a duplicate with a new number.
            batch.originals.append((document, "replaced", rng.choice([LossMark.LOST, LossMark.DESTROYED])))
            series, number, registration_number = _identifiers(kind, region, index, n + 90000, yy)
            duplicate = Document(
                institution=institution,
                graduate=graduate,
                kind=kind,
                series=series,
                number=number,
                registration_number=registration_number,
                issued_on=min(today, issued_on + dt.timedelta(days=rng.randint(1, 60))),
                status=DocumentStatus.DRAFT,
                copy_mark=CopyMark.DUPLICATE,
                replacement_reason=ReplacementReason.DUPLICATE,
                **{
                    name: getattr(document, name)
                    for name in ("programme_code", "programme_name", "qualification", "hours", "honours", "grades")
                },
            )
            batch.duplicates.append((duplicate, document))
        else:
            batch.originals.append((document, DocumentStatus.ISSUED, ""))


def _reserve_ids(model, n: int) -> list[int]:
    """Return `n` unused primary keys for `model`, taken in this transaction.

    PostgreSQL hands them out from the table's sequence (safe against concurrent
    inserts). SQLite, in the embedded demo, takes the ones after the largest id;
    the IMMEDIATE transaction (settings.py) holds the write lock, so none is taken
    twice.
    """
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, n])
            return [row[0] for row in cursor.fetchall()]
    last = model.objects.aggregate(last=Max("pk"))["last"] or 0
    return list(range(last + 1, last + 1 + n))


def _signed_at(issued_on: dt.date, now):
    return min(now, timezone.make_aware(dt.datetime.combine(issued_on, dt.time(12, 0))))


@dataclass
class SeedResult:
    institutions_created: int = 0
    documents_created: int = 0
    users_created: int = 0
    experiments: list = field(default_factory=list)


def _seed_documents(
    result: SeedResult, *, institutions: dict[str, Institution], order: list[str], experiment: Experiment, today
) -> None:
    have_documents = set(
        Institution.objects.filter(inn__in=order)
        .filter(Exists(Document.objects.filter(institution=OuterRef("pk"))))
        .values_list("inn", flat=True)
    )
    rng = random.Random(4242)
    others = [inn for inn in order if inn not in FIXED]
    plan = {inn: count for inn, (*_, count) in FIXED.items()}
    for inn in rng.sample(others, OTHER_WITH_DOCUMENTS):
        plan[inn] = rng.randint(*OTHER_DOCUMENTS)
    plan = {inn: count for inn, count in plan.items() if inn not in have_documents}
    if not plan:
        return
    batch = _Batch()
    for inn, count in plan.items():
        _plan_institution(batch, institutions[inn], order.index(inn), count, today)

    Graduate.objects.bulk_create(batch.graduates, batch_size=1000)
    # The signed payload holds the document's id, so ids are reserved up front and
    # each row is inserted once, already signed (bulk_update would take seconds).
    documents = [d for d, *_ in batch.originals] + [d for d, _ in batch.duplicates]
    for document, pk in zip(documents, _reserve_ids(Document, len(documents)), strict=True):
        document.pk = pk
        document.graduate_id = document.graduate.pk
    for duplicate, original in batch.duplicates:
        duplicate.replaces = original

    # Sign what was ever issued, with each institution's current key, over the very
    # payload the issuing service signs.
    now = timezone.now()
    keys: dict[int, SigningKey] = {}
    signed: list[Document] = []
    annulled: list[Document] = []
    for document, status, extra in batch.originals:
        if status == DocumentStatus.DRAFT:
            continue
        signed.append(document)
        if status == DocumentStatus.ANNULLED:
            document.annul_reason = extra
            annulled.append(document)
        elif status == "replaced":
            document.loss_mark = extra
            document.annul_reason = gettext("Replaced by a duplicate")
            annulled.append(document)
    signed.extend(d for d, _ in batch.duplicates)
    # Drawn at once for the whole batch, as bulk issuance does (documents.status_list).
    for document, index in zip(signed, status_list_indexes_new(len(signed)), strict=True):
        document.status_list_index = index
    for document in signed:
        inst = document.institution
        if inst.pk not in keys:
            keys[inst.pk] = signing_key_current(institution=inst)
        document.experiment = None if inst.inn == REGULAR_INN else experiment
        document.status = DocumentStatus.ISSUED
        document.signed_payload = build_payload(document)
        document.signing_key = keys[inst.pk]
        document.signature = sign_payload(document.signed_payload, document.signing_key)
        document.signed_at = _signed_at(document.issued_on, now)
    for document in annulled:
        document.status = DocumentStatus.ANNULLED
        document.annulled_at = min(document.signed_at + dt.timedelta(days=2), now)
    # Keys made for the demo date from the year's start, so every demo signature
    # falls inside its key's validity window.
    SigningKey.objects.filter(pk__in=[k.pk for k in keys.values()], not_before__gt=now - dt.timedelta(hours=1)).update(
        not_before=timezone.make_aware(dt.datetime(today.year, 1, 1))
    )
    Document.objects.bulk_create(documents, batch_size=1000)

    # The outbox rows the services write: published (and withdrawn when annulled),
    # all already delivered, as the delivery worker would have left them.
    deliveries = []
    for document in signed:
        delivered = document.signed_at + dt.timedelta(minutes=3)
        deliveries.append(
            Delivery(
                document=document,
                institution_id=document.institution_id,
                action=DeliveryAction.PUBLISH,
                state=DeliveryState.DONE,
                attempts=1,
                next_attempt_at=document.signed_at,
                portal_id=str(uuid.UUID(int=random.Random(document.number).getrandbits(128))),
                delivered_at=delivered,
            )
        )
        if document.status == DocumentStatus.ANNULLED:
            deliveries.append(
                Delivery(
                    document=document,
                    institution_id=document.institution_id,
                    action=DeliveryAction.WITHDRAW,
                    state=DeliveryState.DONE,
                    attempts=1,
                    next_attempt_at=document.annulled_at,
                    portal_id=deliveries[-1].portal_id,
                    delivered_at=document.annulled_at,
                )
            )
    Delivery.objects.bulk_create(deliveries, batch_size=1000)

    # History: one chain append per institution and action, not per document.
    actor = Actor.system("seed_demo")
    by_institution: dict[int, list[Document]] = {}
    for document in signed:
        by_institution.setdefault(document.institution_id, []).append(document)
    for institution_id, documents in by_institution.items():
        events_record(
            actor=actor,
            action="document.issued",
            object_type="document",
            items=[
                (
                    d.pk,
                    {
                        "kind": d.kind,
                        "kid": d.signing_key.kid,
                        "experiment": d.experiment.year if d.experiment else None,
                    },
                )
                for d in documents
            ],
            institution_id=institution_id,
        )
        gone = [d for d in documents if d.status == DocumentStatus.ANNULLED]
        if gone:
            events_record(
                actor=actor,
                action="document.annulled",
                object_type="document",
                items=[(d.pk, {}) for d in gone],
                institution_id=institution_id,
            )
    result.documents_created = len(batch.originals) + len(batch.duplicates)


def _seed_users(result: SeedResult, *, institutions: dict[str, Institution], password: str) -> None:
    User = get_user_model()
    existing = {u.username: u for u in User.objects.filter(username__in=[login.username for login in LOGINS])}
    # One hash for all demo users: PBKDF2 takes a noticeable moment per call, and
    # these accounts share a published password anyway.
    probe = existing.get("school.signer")
    password_hash = None
    if probe is None or not probe.check_password(password):
        password_hash = make_password(password)
    group, _created = Group.objects.get_or_create(name=OPERATORS_GROUP)
    for login in LOGINS:
        user = existing.get(login.username)
        if user is None:
            user = User(username=login.username, password=password_hash, is_staff=login.role == "operator")
            user.save()
            result.users_created += 1
        elif password_hash:
            user.password = password_hash
            user.save(update_fields=["password"])
        if login.role == "operator":
            user.groups.add(group)
            # The admin asks operators for a TOTP code; the demo's secret is printed.
            ensure_demo_totp(user, password=password)
        else:
            Membership.objects.get_or_create(
                user=user, institution=institutions[login.inn], defaults={"role": login.role}
            )


@transaction.atomic
def seed(*, password: str = DEFAULT_PASSWORD, today: dt.date | None = None) -> SeedResult:
    """Load the demo data; idempotent: what exists (by INN, login, year) is kept.

    Returns what was created in this run. A second run creates nothing.
    """
    today = today or timezone.localdate()
    result = SeedResult()
    specs = institution_specs()
    order = [spec["inn"] for spec in specs]
    existing = set(Institution.objects.filter(inn__in=order).values_list("inn", flat=True))
    missing = [Institution(**spec) for spec in specs if spec["inn"] not in existing]
    Institution.objects.bulk_create(missing, batch_size=1000)
    result.institutions_created = len(missing)
    institutions = {i.inn: i for i in Institution.objects.filter(inn__in=order)}

    reference, _created = experiment_ensure(2024, today=today)
    current, _created = experiment_ensure(today.year, today=today)
    result.experiments = sorted({reference.year, current.year})
    participations = [Participation(experiment=reference, institution=i) for i in institutions.values()]
    participations += [
        Participation(experiment=current, institution=i) for inn, i in institutions.items() if inn != REGULAR_INN
    ]
    Participation.objects.bulk_create(participations, ignore_conflicts=True, batch_size=1000)

    _seed_users(result, institutions=institutions, password=password)
    _seed_documents(result, institutions=institutions, order=order, experiment=current, today=today)
    return result


def login_rows(*, password: str) -> list[tuple[str, str, str, str]]:
    """Return (login, role, institution, note) for each demo login, as seed_demo prints them."""
    roles = {"operator": gettext("ministry operator (admin)"), "clerk": gettext("clerk"), "signer": gettext("signer")}
    names = dict(Institution.objects.filter(inn__in=[x.inn for x in LOGINS if x.inn]).values_list("inn", "short_name"))
    rows = []
    for login in LOGINS:
        where = f"{login.inn} {names.get(login.inn, '')}".strip() if login.inn else "/admin/"
        if login.inn == REGULAR_INN:
            where += " — " + gettext("outside the experiment")
        rows.append((login.username, str(roles[login.role]), where, login_note(login, password=password)))
    return rows


def login_note(login: DemoLogin, *, password: str) -> str:
    """Return what a login needs beyond the password, printed under it; empty when nothing.

    The place for what a login needs beyond the password: the operator's TOTP
    secret for the admin's second factor; empty when nothing.
    """
    device = demo_totp_device(login.username) if login.role == "operator" else None
    if device is None:
        return ""
    secret, uri = totp_secret_and_uri(device)
    return gettext("admin code: TOTP secret %(secret)s, or scan %(uri)s") % {"secret": secret, "uri": uri}
