from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from nodes.models import Membership, Node


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind", "ods_code", "resource_count", "fhir_base"]
    list_filter = ["kind"]
    search_fields = ["slug", "name", "ods_code"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(live_resources=Count("resources", filter=Q(resources__deleted=False)))
        )

    @admin.display(description="Resources", ordering="live_resources")
    def resource_count(self, node: Node) -> str:
        url = reverse("admin:fhirserver_resource_changelist") + f"?node__id__exact={node.pk}"
        return format_html('<a href="{}">{}</a>', url, node.live_resources)

    @admin.display(description="FHIR base")
    def fhir_base(self, node: Node) -> str:
        return format_html('<a href="/{}/fhir/metadata">/{}/fhir/</a>', node.slug, node.slug)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "node", "role"]
    list_filter = ["role", "node"]
    search_fields = ["user__username", "node__slug"]
    list_select_related = ["user", "node"]
    autocomplete_fields = ["user"]
