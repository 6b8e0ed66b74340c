"""Admin for API tokens (created here with the plain token shown once, revoked by an action)
and the idempotency records of their writes."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django_q import admin as q_admin  # registers django-q2's admins, replaced below
from django_q.models import Failure, Success

from omni.admin_tools import ReadOnlyAdminMixin
from omni.auth import token_create, token_revoke
from omni.models import ApiToken, IdempotentRequest


class ApiTokenForm(forms.ModelForm):
    scope_choices = forms.MultipleChoiceField(
        label="Scopes",
        choices=ApiToken.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiToken.Scope.READ],
    )

    class Meta:
        model = ApiToken
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["scope_choices"].initial = self.instance.scopes


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        match self.value():
            case "active":
                return queryset.filter(revoked_at__isnull=True)
            case "revoked":
                return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["name", "prefix", "scope_list", "last_used_at", "created_at", "revoked_at"]
    list_filter = [RevokedFilter]
    search_fields = ["name", "=prefix"]
    readonly_fields = ["prefix", "last_used_at", "created_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.scopes)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        scopes = form.cleaned_data["scope_choices"]
        if change:
            obj.scopes = sorted(scopes)
            obj.save(update_fields=["name", "scopes", "updated_at"])
            return
        token, plain = token_create(name=obj.name, scopes=scopes)
        obj.pk = token.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            f"API token “{token.name}”: {plain} — copy it now; it will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            token_revoke(token=token)
        self.message_user(request, f"Revoked {len(tokens)} token(s); they stop working at once.")


@admin.register(IdempotentRequest)
class IdempotentRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The API's remembered writes: what a retry with the same Idempotency-Key is answered."""

    list_display = ["key", "token", "status", "created_at"]
    list_filter = ["status"]
    list_select_related = ["token"]
    search_fields = ["=key"]
    search_help_text = "The exact Idempotency-Key."
    show_full_result_count = False
    denied_permissions = frozenset({"add", "change"})


# django-q2's task lists without their cluster and stopped columns, which pushed the lists past a
# 1440 px screen: a deployment runs under one cluster name (the filter still lists it), and when a
# task started (and, for a success, how long it took) says when it stopped.
admin.site.unregister(Success)
admin.site.unregister(Failure)
_WIDE = ("cluster", "stopped")


@admin.register(Success)
class SuccessAdmin(q_admin.TaskAdmin):
    list_display = tuple(column for column in q_admin.TaskAdmin.list_display if column not in _WIDE)


@admin.register(Failure)
class FailureAdmin(q_admin.FailAdmin):
    list_display = tuple(column for column in q_admin.FailAdmin.list_display if column not in _WIDE)
