"""The admin site for ministry operators: a password and a TOTP token, both required.

Staff who signed in without a verified OTP device (through the cabinet's login, or
with a password alone) are treated as if they were not staff and get the admin's
login form, which asks for the token.
"""

from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.forms import OTPAuthenticationFormMixin


class TokenAdminAuthenticationForm(OTPAdminAuthenticationForm):
    # Our own messages, so they go through the portal's translations.
    otp_error_messages = dict(
        OTPAuthenticationFormMixin.otp_error_messages,
        token_required=_("Enter the six-digit code from your authenticator app."),
        invalid_token=_("The code is wrong or has expired. Enter the current code from your authenticator app."),
        device_required=_("Choose an authenticator device."),
    )

    def _chosen_device(self, user):
        # django-otp wants the device chosen explicitly, which makes the login a
        # two-step form; an operator with one confirmed device (the usual case)
        # uses it without choosing. Only the user's own devices are considered.
        device = super()._chosen_device(user)
        if device is None:
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            if len(devices) == 1:
                device = devices[0]
        return device


class RegistryAdminSite(OTPAdminSite):
    site_header = _("Registry administration")
    site_title = _("Registry administration")
    index_title = _("Ministry operators")
    login_form = TokenAdminAuthenticationForm
    login_template = "admin/otp_login.html"

    def __init__(self, name="admin"):
        # Keep the "admin" instance name so every `admin:` URL name still resolves.
        super().__init__(name)
