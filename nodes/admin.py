from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from exchange.topics import topics_install
from fhirserver.scopes import problems
from fhirserver.smart import jwks_problem
from nodes.models import ApiClient, Membership, Node
from nodes.services import api_client_issue


class ApiClientForm(forms.ModelForm):
    jwks_uri = forms.URLField(
        label="JWKS URI", required=False, assume_scheme="https", help_text=ApiClient.jwks_uri.field.help_text
    )

    class Meta:
        model = ApiClient
        fields = ["node", "name", "scopes", "jwks", "jwks_uri", "revoked"]
        widgets = {"scopes": forms.Textarea(attrs={"rows": 3})}

    def clean_scopes(self) -> str:
        scopes = " ".join(self.cleaned_data["scopes"].split())
        if wrong := problems(scopes):
            raise forms.ValidationError(
                f"These grant nothing: {', '.join(wrong)}. Write system/<Type>.<cruds> or "
                "system/<Type>.read|write, with * for every type."
            )
        return scopes

    def clean_jwks(self):
        jwks = self.cleaned_data["jwks"]
        if jwks and (problem := jwks_problem(jwks)):
            raise forms.ValidationError(problem)
        return jwks


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

    def save_model(self, request, obj: Node, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # a new node offers the built-in subscription topics, as every node does
            topics_install(node=obj)

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


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "node", "scopes", "created", "last_used", "revoked"]
    list_filter = ["revoked", "node"]
    search_fields = ["name", "node__slug", "client_id", "scopes"]
    list_select_related = ["node"]
    readonly_fields = ["client_id", "created", "last_used"]
    form = ApiClientForm
    actions = ["revoke", "issue_new_token"]

    def save_model(self, request, obj: ApiClient, form, change: bool) -> None:
        if change or obj.jwks or obj.jwks_uri:  # a SMART client signs its assertions: no static token
            super().save_model(request, obj, form, change)
            if not change:
                messages.success(request, f"{obj} gets access tokens as client_id {obj.client_id}.")
            return
        client, token = api_client_issue(node=obj.node, name=obj.name, scopes=obj.scopes)
        obj.pk = client.pk
        messages.warning(request, f"Token for {client}: {token} (copy it now; it is not shown again).")

    @admin.action(description="Revoke the selected clients' tokens")
    def revoke(self, request, queryset) -> None:
        count = queryset.update(revoked=True)
        messages.success(request, f"Revoked {count} token(s).")

    @admin.action(description="Issue a new token to each selected client")
    def issue_new_token(self, request, queryset) -> None:
        for client in queryset.select_related("node"):
            _, token = api_client_issue(node=client.node, name=client.name)
            messages.warning(request, f"New token for {client}: {token} (copy it now).")
