"""Stored resources in the admin: read-only, since an edit here would bypass validation."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from fhirserver.models import CustomSearchParameter, ReindexJob, Resource, ResourceVersion


def _pretty(text: str) -> str:
    if not text:
        return "(deleted)"
    return format_html("<pre>{}</pre>", json.dumps(json.loads(text), indent=2))


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class VersionInline(admin.TabularInline):
    model = ResourceVersion
    fields = ["version_id", "method", "last_updated"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Resource)
class ResourceAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "node", "resource_type", "version_id", "last_updated", "deleted"]
    list_filter = ["node", "resource_type", "deleted"]
    # An AuditEvent is found by the patient's NHS number, the client_id or username of its agent,
    # or a resource it touched (Type/id): the values of its reference index.
    search_fields = ["logical_id", "tokens__code", "references__id_value", "references__target_id"]
    list_select_related = ["node"]
    date_hierarchy = "last_updated"
    fields = ["node", "resource_type", "logical_id", "version_id", "last_updated", "deleted", "content"]
    readonly_fields = fields
    inlines = [VersionInline]

    @admin.display(description="Content")
    def content(self, resource: Resource) -> str:
        return _pretty(resource.text)


@admin.register(ResourceVersion)
class ResourceVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "method", "last_updated"]
    list_select_related = ["resource", "resource__node"]
    search_fields = ["resource__logical_id"]
    fields = ["resource", "version_id", "method", "last_updated", "content"]
    readonly_fields = fields

    @admin.display(description="Content")
    def content(self, version: ResourceVersion) -> str:
        return _pretty(version.text)


@admin.register(CustomSearchParameter)
class CustomSearchParameterAdmin(ReadOnlyAdmin):
    """A node's own search parameters: written as SearchParameter resources through its API."""

    list_display = ["code", "node", "bases", "type", "expression", "changed", "indexed"]
    list_filter = ["node", "complete"]
    list_select_related = ["node"]
    search_fields = ["code", "url", "expression"]
    fields = [
        "node",
        "resource",
        "url",
        "code",
        "base",
        "type",
        "expression",
        "target",
        "changed",
        "complete",
    ]
    readonly_fields = fields

    @admin.display(description="Base")
    def bases(self, row: CustomSearchParameter) -> str:
        return ", ".join(row.base)

    @admin.display(description="Indexed", boolean=True)
    def indexed(self, row: CustomSearchParameter) -> bool:
        """False while resources written before it may lack it (until $reindex)."""
        return row.complete


@admin.register(ReindexJob)
class ReindexJobAdmin(ReadOnlyAdmin):
    """$reindex jobs and how far each has gone."""

    list_display = ["pk", "node", "what", "status", "progress", "created", "finished"]
    list_filter = ["node", "status"]
    list_select_related = ["node"]
    fields = [
        "node",
        "resource_type",
        "status",
        "total",
        "processed",
        "created",
        "started",
        "heartbeat",
        "finished",
        "error",
    ]
    readonly_fields = fields

    @admin.display(description="Resources")
    def what(self, job: ReindexJob) -> str:
        return job.resource_type or "every type"

    @admin.display(description="Progress")
    def progress(self, job: ReindexJob) -> str:
        share = f" ({100 * job.processed // job.total}%)" if job.total else ""
        return f"{job.processed} of {job.total}{share}"
