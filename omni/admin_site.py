"""The back office's admin site: its name, and its navigation in the users' words.

Django lists the admin's tables app by app, alphabetically. Staff think in DealPOS's order
instead: the product tabs, then Sync Logs, then the channels; the tables only the engine writes
sit together under Operations. `NAVIGATION` says where each registered model goes, by
"app_label.ModelName" (omni is the foundation floor: it names the apps' models, never imports
them); the index page and the sidebar both read it. A model registered but not named here is
still shown, under its app's name after the sections (tests/test_admin_index.py keeps the table
complete).
"""

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class Link:
    """A page that is not a model's changelist (a report), placed among the models."""

    label: str
    url_name: str
    model: str  # the model whose view permission lets a user see the link


@dataclass(frozen=True)
class Renamed:
    """A model's changelist under another name than its plural, where the section says it."""

    model: str
    label: str


@dataclass(frozen=True)
class Section:
    name: str
    entries: tuple[str | Renamed | Link, ...]


NAVIGATION: tuple[Section, ...] = (
    Section(
        "Channel products",
        (
            "channels.SoldInChannel",
            "channels.NotInPos",
            "channels.NotInChannel",
            "channels.InPos",
            "channels.MultipleListedSku",
            "channels.ChannelStatistic",
        ),
    ),
    Section(
        "Sync Logs",
        (
            "synclogs.CreateOrderLog",
            "synclogs.ConvertOrderToInvoiceLog",
            "synclogs.CreateInvoiceLog",
            "synclogs.CreateOutboundLogisticLog",
            "synclogs.AddPaymentLog",
            "synclogs.VoidInvoiceLog",
            Renamed("synclogs.SyncLog", "All"),
            Link("Report · last 7 days", "admin:synclogs_report", "synclogs.SyncLog"),
            "synclogs.SalesOrder",
        ),
    ),
    Section(
        "Channels",
        (
            "channels.Channel",
            "channels.Listing",
            "channels.StockRule",
            "channels.SkuAlias",
            "channels.PriceOverride",
        ),
    ),
    Section(
        "Catalog",
        (
            "catalog.Product",
            "catalog.Variant",
            "catalog.Stock",
            "catalog.StockMovement",
            "catalog.ImportRun",
            "catalog.Outlet",
            "catalog.Brand",
            "catalog.Category",
        ),
    ),
    Section(
        "Operations",
        (
            "channels.PendingPush",
            "channels.CatalogPush",
            "channels.InventorySync",
            "channels.PriceSync",
            "channels.Scan",
            "synclogs.WebhookEvent",
            "omni.IdempotentRequest",
            "django_q.Schedule",
            "django_q.OrmQ",
            "django_q.Success",
            "django_q.Failure",
        ),
    ),
    Section("Access", ("auth.User", "auth.Group", "omni.ApiToken")),
)


def model_key(model: type) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


class LabelledAutocomplete(AutocompleteJsonView):
    """An autocomplete whose options read as the searched admin says (`autocomplete_label`):
    a variant as its SKU, product name and options, not its bare SKU."""

    def get_queryset(self):
        # what the label reads, in the same query (the admin's list_select_related)
        queryset = super().get_queryset()
        related = self.model_admin.list_select_related
        return queryset.select_related(*related) if isinstance(related, list | tuple) else queryset

    def serialize_result(self, obj: Any, to_field_name: str) -> dict[str, Any]:
        result = super().serialize_result(obj, to_field_name)
        label = getattr(self.model_admin, "autocomplete_label", None)
        return {**result, "text": label(obj)} if label else result


class OmniAdminSite(admin.AdminSite):
    site_header = "omni back office"
    site_title = "omni"
    index_title = "Channels, sync logs and catalog"

    def autocomplete_view(self, request: HttpRequest):
        return LabelledAutocomplete.as_view(admin_site=self)(request)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """The index and the sidebar in NAVIGATION's order; an app's own page stays Django's."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        entries = {model_key(m["model"]): (app, m) for app in apps for m in app["models"]}
        row = self._row(entries, visible=set(entries))
        sections = []
        for section in NAVIGATION:
            rows = [found for found in map(row, section.entries) if found is not None]
            if rows:
                sections.append(_section(section.name, rows))
        for app in apps:  # registered but not in NAVIGATION: under its app's name, after
            rest = [m for m in app["models"] if model_key(m["model"]) in entries]
            if rest:
                sections.append({**app, "models": rest})
        return sections

    def _row(self, entries: dict[str, tuple[dict, dict]], visible: set[str]):
        """Each entry's row; a model's is taken out of `entries` (what is left goes last)."""

        def row(entry: str | Renamed | Link) -> dict[str, Any] | None:
            if isinstance(entry, Link):
                if entry.model not in visible:  # no view permission, or not registered
                    return None
                try:
                    url = reverse(entry.url_name, current_app=self.name)
                except NoReverseMatch:
                    return None
                return {
                    "name": entry.label,
                    "object_name": entry.url_name.rsplit(":", 1)[-1],
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                }
            if isinstance(entry, Renamed):
                found = entries.pop(entry.model, None)
                return {**found[1], "name": entry.label} if found else None
            found = entries.pop(entry, None)
            return found[1] if found else None

        return row


def _section(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "app_label": name.lower().replace(" ", "-"),
        "app_url": rows[0]["admin_url"],
        "has_module_perms": True,
        "models": rows,
    }


class OmniAdminConfig(AdminConfig):
    """django.contrib.admin, with omni's site, in INSTALLED_APPS in its place."""

    default_site = "omni.admin_site.OmniAdminSite"
