from __future__ import annotations

from django.contrib import admin

from engine.models import Connection, Relay


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "engine",
        "ods_code",
        "ods_rule",
        "prescription_type",
        "prescription_type_rule",
        "concept_map",
    ]
    list_editable = ["ods_rule", "prescription_type", "prescription_type_rule", "concept_map"]
    list_filter = ["engine"]
    list_select_related = ["engine"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "client":  # the engine's own API clients
            from nodes.models import ApiClient, Node

            kwargs["queryset"] = ApiClient.objects.filter(node__kind=Node.Kind.INTEGRATION_ENGINE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Relay)
class RelayAdmin(admin.ModelAdmin):
    list_display = ["created", "engine", "sender", "method", "path", "destination", "status", "outcome"]
    list_filter = ["engine", "outcome"]
    search_fields = ["path", "note", "sender"]
    readonly_fields = [f.name for f in Relay._meta.fields]
    list_select_related = ["engine", "destination"]

    def has_add_permission(self, request) -> bool:
        return False
