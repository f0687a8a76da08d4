from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from exchange.models import Attempt, Message, Partner, Subscription
from exchange.services import message_requeue


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "ods_code", "role", "topology", "node", "fhir_base"]
    list_filter = ["node", "role", "topology"]
    search_fields = ["name", "ods_code"]
    list_select_related = ["node"]


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ["number", "created", "status_code", "duration_ms", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["dmed/admin.css"]}

    list_display = [
        "id",
        "node",
        "kind",
        "method",
        "short_url",
        "coloured_status",
        "attempts",
        "next_attempt_at",
        "created",
    ]
    list_filter = ["status", "kind", "node"]
    search_fields = ["key", "url", "last_error"]
    list_select_related = ["node"]
    readonly_fields = [f.name for f in Message._meta.fields]
    inlines = [AttemptInline]
    actions = ["requeue"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="URL")
    def short_url(self, message: Message) -> str:
        return message.url if len(message.url) < 70 else message.url[:67] + "…"

    @admin.display(description="Status", ordering="status")
    def coloured_status(self, message: Message) -> str:
        # Coloured by static/dmed/admin.css: the Content-Security-Policy allows no inline style.
        return format_html(
            '<strong class="dmed-status-{}">{}</strong>', message.status, message.get_status_display()
        )

    @admin.action(description="Requeue the selected dead messages")
    def requeue(self, request, queryset) -> None:
        dead = list(queryset.filter(status=Message.Status.DEAD))
        for message in dead:
            message_requeue(message=message)
        messages.success(request, f"Requeued {len(dead)} message(s).")


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["created", "node", "method", "url", "status_code", "duration_ms", "number"]
    list_filter = ["node", "status_code"]
    search_fields = ["url", "error"]
    list_select_related = ["node"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions as their resources define them; change them through the FHIR API."""

    list_display = [
        "resource",
        "node",
        "status",
        "resource_type",
        "topic",
        "endpoint",
        "event_count",
        "last_sent",
    ]
    list_filter = ["node", "status", "resource_type"]
    search_fields = ["endpoint", "topic", "criteria"]
    list_select_related = ["node", "resource"]
    readonly_fields = [f.name for f in Subscription._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
