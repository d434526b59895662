"""Django admin: connected stores (URL and secret write-only), and read-only requests and audit.

Requests change state only through the lifecycle services, so the admin shows them but never
edits them; the audit trail is append-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from requests.connectors.registry import CONNECTORS
from requests.models import AuditEvent, ConnectedStore, DataRequest, Job, StaffProfile
from requests.services import store_health, stores
from requests.services.audit import actor_for_user, audit_record
from requests.services.errors import ServiceError


class ConnectedStoreForm(forms.ModelForm):
    # Credentials are typed in and never rendered back; empty keeps the stored value.
    url = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Connection URL (a SQLAlchemy URL for SQL kinds); empty keeps the current one.",
    )
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook signing secret. Leave empty to keep the current one.",
    )

    class Meta:
        model = ConnectedStore
        fields = ["name", "kind", "url", "secret", "map_yaml", "enabled", "queue", "options"]

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if url:
            return url
        if self.instance.pk:
            return self.instance.url
        kind = CONNECTORS.get(self.cleaned_data.get("kind", ""))
        if kind is None or kind.needs_url:
            raise forms.ValidationError("A connection URL is needed for this kind of store.")
        return ""

    def clean_secret(self):
        return self.cleaned_data["secret"] or (self.instance.secret if self.instance.pk else "")

    def clean_map_yaml(self):
        text = self.cleaned_data["map_yaml"]
        if text.strip():
            try:
                stores.parse_map(text)
            except ServiceError as exc:
                raise forms.ValidationError(exc.message) from None
        return text


@admin.register(ConnectedStore)
class ConnectedStoreAdmin(admin.ModelAdmin):
    form = ConnectedStoreForm
    list_display = ["name", "kind", "enabled", "last_check_ok", "last_checked_at"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["last_check_ok", "last_check_message", "last_checked_at"]
    actions = ["check_stores"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            action="store.changed" if change else "store.created",
            actor=actor_for_user(request.user),
            details={"store": obj.name, "kind": obj.kind, "fields": sorted(form.changed_data)},
        )

    @admin.action(description="Check the connection of the selected stores")
    def check_stores(self, request, queryset):
        for store in queryset:
            result = store_health.store_check(store=store, actor=actor_for_user(request.user))
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{store.name}: {result.message}", level)
            for problem in result.problems:
                self.message_user(request, f"{store.name}: {problem}", messages.ERROR)
            for warning in result.warnings:
                self.message_user(request, f"{store.name}: {warning}", messages.WARNING)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    """A staff member's language for their console and the mail the portal sends them."""

    list_display = ["user", "language"]
    list_select_related = ["user"]


@admin.register(DataRequest)
class DataRequestAdmin(ReadOnlyAdmin):
    list_display = ["reference", "kind", "status", "received_at", "due_on"]
    list_filter = ["kind", "status"]
    search_fields = ["reference"]
    exclude = ["identity", "subject_key"]


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["request", "store", "kind", "state", "attempts", "updated_at"]
    list_filter = ["kind", "state"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "created_at", "actor", "action", "request"]
    list_filter = ["action"]
