"""Stored resources in the admin: read-only, since an edit here would bypass validation."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from fhirserver.models import Resource, ResourceVersion


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
