"""Forms for the public pages and the staff console.

Identity rules live in `requests.identity` and are shared with the API; these forms only turn its
English errors into translated messages next to the right field.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from requests import clock
from requests.identity import INTAKE_TYPES, MAX_LENGTHS, IdentityError, clean_intake_identity
from requests.services.lifecycle import MAX_MESSAGE_LENGTH
from requests.services.verification import CODE_DIGITS
from requests.states import Kind, RejectionReason

# A syntactically valid address used only to check one optional value on its own (see clean).
_PROBE_EMAIL = "probe@example.com"


class FileRequestForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What would you like us to do?"),
        choices=Kind.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose whether you want a copy of your data or want it erased."),
            "invalid_choice": _("Choose one of the options given."),
        },
    )
    email = forms.CharField(
        label=_("Email address"),
        help_text=_(
            "We send a code to this address to check that it is yours, and we look for "
            "the data held under it."
        ),
        # A text input with the email keyboard: browsers refuse non-ASCII local parts in
        # type=email fields, and internationalised addresses (RFC 6531) are accepted here.
        widget=forms.TextInput(
            attrs={"inputmode": "email", "autocomplete": "email", "spellcheck": "false"}
        ),
        error_messages={"required": _("Enter your email address.")},
    )
    phone = forms.CharField(
        label=_("Phone number (optional)"),
        required=False,
        help_text=_("In international form, for example +33 6 12 34 56 78."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    name = forms.CharField(
        label=_("Full name (optional)"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    account_id = forms.CharField(
        label=_("Account identifier (optional)"),
        required=False,
        help_text=_("A customer number or user name you have with us, if you know one."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    KIND_HINTS = {
        Kind.ACCESS: _(
            "We send you a copy of the personal data we hold about you, with what we use it "
            "for, who we share it with and how long we keep it."
        ),
        Kind.ERASURE: _(
            "We delete the personal data we hold about you, unless the law requires us to "
            "keep some of it; we tell you what we kept and why."
        ),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        region = settings.PORTAL_DEFAULT_PHONE_REGION
        if region:
            self.fields["phone"].help_text = _(
                "For example +33 6 12 34 56 78. A number without + and a country code is read as "
                "a number from %(region)s."
            ) % {"region": region}

    def kind_options(self):
        """The radio buttons with the plain-words explanation of each kind."""
        return [(radio, self.KIND_HINTS.get(radio.data["value"], "")) for radio in self["kind"]]

    def clean(self):
        cleaned = super().clean()
        raw = {name: cleaned.get(name) or "" for name in INTAKE_TYPES}
        try:
            cleaned["identity"] = clean_intake_identity(raw)
        except IdentityError:
            # The shared rules stop at the first bad value; check each value on its own so the
            # person sees every problem in one go instead of one per submission.
            for name in INTAKE_TYPES:
                if name in self.errors:
                    continue
                probe = (
                    {"email": raw["email"]}
                    if name == "email"
                    else {"email": _PROBE_EMAIL, name: raw[name]}
                )
                try:
                    clean_intake_identity(probe)
                except IdentityError:
                    self.add_error(name, identity_error_message(name, raw[name]))
            if not self.errors:
                raise ValidationError(_("Check the details you gave.")) from None
        return cleaned


def identity_error_message(name: str, value: str) -> str:
    """A translated message for a value `clean_intake_identity` refused.

    Worked out from the value rather than the service's English text, which is not translated.
    """
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        return ngettext(
            "Use at most %(limit)d character.", "Use at most %(limit)d characters.", limit
        ) % {"limit": limit}
    if name == "email":
        if not value.strip():
            return str(_("Enter your email address."))
        return str(_("Enter a valid email address, like name@example.com."))
    if name == "phone":
        region = settings.PORTAL_DEFAULT_PHONE_REGION
        if region:
            return str(
                _(
                    "Enter a valid phone number: with + and the country code, like "
                    "+33 6 12 34 56 78, or a national number from %(region)s."
                )
                % {"region": region}
            )
        return str(_("Enter a valid phone number in international form, like +33 6 12 34 56 78."))
    return str(_("Check this value."))


class VerifyCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the email"),
        help_text=_("The 6-digit code, for example 123456."),
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "spellcheck": "false",
                "class": "input-code",
            }
        ),
        error_messages={"required": _("Enter the code from the email.")},
    )

    def clean_code(self):
        # People paste codes with spaces ("123 456"); only the digits matter.
        code = "".join(self.cleaned_data["code"].split())
        if not (code.isdigit() and len(code) == CODE_DIGITS):
            raise ValidationError(
                _("Enter the %(digits)d-digit code from the email."),
                params={"digits": CODE_DIGITS},
            )
        return code


class PhoneCodeForm(VerifyCodeForm):
    """The code sent by text message to confirm the phone number (status page)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].label = _("Code from the text message")
        self.fields["code"].error_messages["required"] = _("Enter the code from the text message.")


class RejectForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Legal reason"),
        choices=[("", _("Choose a reason")), *RejectionReason.choices],
        error_messages={"required": _("Choose the legal reason for the refusal.")},
    )
    message = forms.CharField(
        label=_("Message to the person"),
        required=False,
        max_length=MAX_MESSAGE_LENGTH,
        help_text=_("Explain the decision in plain words. Required for “Other legal reason”."),
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason") == RejectionReason.OTHER and not cleaned.get("message"):
            self.add_error("message", _("Explain the legal reason in the message."))
        return cleaned


class ExtendForm(forms.Form):
    months = forms.TypedChoiceField(label=_("Extend by"), coerce=int)
    reason = forms.CharField(
        label=_("Reason the person will be told"),
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Give the reason for the extension.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Built per form so the labels follow the language active for this page.
        self.fields["months"].choices = [
            (months, ngettext("%(months)d month", "%(months)d months", months) % {"months": months})
            for months in range(1, clock.MAX_EXTENSION_MONTHS + 1)
        ]


class AskInformationForm(forms.Form):
    message = forms.CharField(
        label=_("What do you need from the person?"),
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": _("Say what information is needed.")},
    )


class SubjectReplyForm(forms.Form):
    """The person's answer to staff's request for more information (status page)."""

    message = forms.CharField(
        label=_("Your reply"),
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={"required": _("Write the information we asked for.")},
    )
