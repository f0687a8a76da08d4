from __future__ import annotations

from django.urls import path

from fhirserver import views

# Included under <slug:node>/fhir/.
urlpatterns = [
    path("", views.SystemView.as_view(), name="fhir-system"),
    path("metadata", views.MetadataView.as_view(), name="fhir-metadata"),
    path("_history", views.HistoryView.as_view(), name="fhir-history-system"),
    path("$reindex", views.ReindexView.as_view(), name="fhir-reindex"),
    path("<str:resource_type>/$reindex", views.ReindexView.as_view(), name="fhir-reindex-type"),
    path("<str:resource_type>", views.TypeView.as_view(), name="fhir-type"),
    path("<str:resource_type>/_search", views.SearchView.as_view(), name="fhir-search"),
    path("<str:resource_type>/_history", views.HistoryView.as_view(), name="fhir-history-type"),
    path("<str:resource_type>/<str:logical_id>", views.InstanceView.as_view(), name="fhir-instance"),
    path(
        "<str:resource_type>/<str:logical_id>/_history",
        views.HistoryView.as_view(),
        name="fhir-history-instance",
    ),
    path(
        "<str:resource_type>/<str:logical_id>/_history/<str:version_id>",
        views.VersionView.as_view(),
        name="fhir-vread",
    ),
]
