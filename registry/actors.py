"""Who performs an operation: a staff member at one institution, a partner key, the system.

Services take an `Actor` and check roles themselves, so a hidden button is never
the only thing standing between a clerk and issuing.
"""

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from registry.errors import NotAllowed

CLERK = "clerk"
SIGNER = "signer"
SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    label: str
    institution: Any = None
    role: str = SYSTEM
    user: Any = None
    api_key: Any = None

    @classmethod
    def staff(cls, *, user, institution, role: str) -> "Actor":
        return cls(label=f"user:{user.pk}", institution=institution, role=role, user=user)

    @classmethod
    def partner(cls, *, api_key) -> "Actor":
        # An issue key acts for its institution with the signer's powers: the partner
        # system is the institution's own information system.
        return cls(label=f"api-key:{api_key.prefix}", institution=api_key.institution, role=SIGNER, api_key=api_key)

    @classmethod
    def system(cls, what: str, *, user=None) -> "Actor":
        return cls(label=f"system:{what}" if user is None else f"user:{user.pk}", user=user)

    def require_signer(self) -> None:
        if self.role not in (SIGNER, SYSTEM):
            raise NotAllowed(_("Only a signer may do this."), code="signer_required")

    def require_institution(self, institution_id: int) -> None:
        if self.role != SYSTEM and (self.institution is None or self.institution.pk != institution_id):
            raise NotAllowed(_("This record belongs to another institution."), code="other_institution")
