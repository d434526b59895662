"""The request page's forms beyond the decisions shared with the rest of the console."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from requests.forms import RejectForm
from requests.services.identifiers import MAX_NOTE_LENGTH as MAX_PROOF_NOTE_LENGTH
from requests.services.job_staff import MAX_NOTE_LENGTH as MAX_JOB_NOTE_LENGTH
from requests.services.notes import MAX_NOTE_LENGTH


class RejectWithMessageForm(RejectForm):
    """On the request page a refusal always explains itself to the person, whatever the reason."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        message = self.fields["message"]
        message.required = True
        message.help_text = _("Explain the decision in plain words; the person reads it.")
        message.error_messages["required"] = _("Write the message the person will read.")


class ConfirmIdentityForm(forms.Form):
    types = forms.MultipleChoiceField(
        label=_("Identifiers you saw proof of"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Choose at least one identifier."),
            "invalid_choice": _("Choose among the identifiers not yet verified."),
        },
    )
    note = forms.CharField(
        label=_("What proof did you see?"),
        max_length=MAX_PROOF_NOTE_LENGTH,
        help_text=_("Kept with the request for staff only; the audit trail records its length."),
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Say what proof you saw.")},
    )

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["types"].choices = list(choices)


class ConfirmJobForm(forms.Form):
    store = forms.CharField(widget=forms.HiddenInput)
    note = forms.CharField(
        label=_("What was done in this system?"),
        max_length=MAX_JOB_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Say what was done in this system.")},
    )


class NoteForm(forms.Form):
    text = forms.CharField(
        label=_("Internal note"),
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Write the note first.")},
    )
