"""Included under <engine:node>/ ahead of every node's routes: what an integration engine
answers itself, and the relay for the rest of its FHIR base."""

from __future__ import annotations

from django.urls import path

from engine import screens, views
from fhirserver import views as fhir

CONCEPT_MAP = {"resource_type": "ConceptMap"}

urlpatterns = [
    path("fhir/ConceptMap/$translate", views.TranslateView.as_view()),
    path("fhir/ConceptMap/<str:logical_id>/$translate", views.TranslateView.as_view()),
    path("fhir/ConceptMap", fhir.TypeView.as_view(), CONCEPT_MAP),
    path("fhir/ConceptMap/<str:logical_id>", fhir.InstanceView.as_view(), CONCEPT_MAP),
    path("fhir/ConceptMap/<str:logical_id>/_history", fhir.HistoryView.as_view(), CONCEPT_MAP),
    path(
        "fhir/ConceptMap/<str:logical_id>/_history/<str:version_id>", fhir.VersionView.as_view(), CONCEPT_MAP
    ),
    path("fhir/metadata", fhir.MetadataView.as_view()),  # the engine's own: what it answers itself
    path("fhir", views.RelayView.as_view()),
    path("fhir/<path:rest>", views.RelayView.as_view()),
    path("notifications", views.NotificationRelayView.as_view()),  # 404: say for whom
    path("notifications/<str:ods_code>", views.NotificationRelayView.as_view()),
    path("relayed/<int:message_id>", views.RelayedView.as_view()),
    path("traffic", screens.traffic_page, name="engine-traffic"),
]
