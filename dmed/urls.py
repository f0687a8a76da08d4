from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from engine.converters import EngineSlug
from exchange.views import NotificationView, SubscriptionEventsView, SubscriptionStatusView
from fhirserver.views import SmartConfigurationView, SystemView, token_view
from nodes import views as node_views

register_converter(EngineSlug, "engine")

admin.site.site_header = "dmed administration"
admin.site.site_title = "dmed admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", node_views.home, name="home"),
    # Each node's SMART Backend Services token endpoint (an engine's too: it authenticates its own).
    path("<slug:node>/oauth/token", token_view, name="oauth-token"),
    path("<slug:node>/fhir/.well-known/smart-configuration", SmartConfigurationView.as_view()),
    # An integration engine relays what other nodes would serve themselves: its routes go first.
    path("<engine:node>/", include("engine.urls")),
    path("<slug:node>/fhir", SystemView.as_view()),
    path("<slug:node>/fhir/Subscription/<str:logical_id>/$status", SubscriptionStatusView.as_view()),
    path("<slug:node>/fhir/Subscription/<str:logical_id>/$events", SubscriptionEventsView.as_view()),
    path("<slug:node>/fhir/", include("fhirserver.urls")),
    path("<slug:node>/notifications", NotificationView.as_view(), name="notifications"),
    path("<slug:node>/", node_views.node_home, name="node-home"),
    path("<slug:node>/audit", node_views.audit_page, name="audit"),
    # Screens: each app's under the node's own path (the views check the node's kind and the role).
    path("<slug:node>/", include("prescribing.urls")),
    path("<slug:node>/", include("dispensing.urls")),
    path("<slug:node>/", include("exchange.urls")),
]

handler403 = "dmed.views.forbidden"
handler404 = "dmed.views.not_found"
handler500 = "dmed.views.error"
