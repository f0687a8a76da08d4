from __future__ import annotations

from django.urls import path

from fhirserver import views

# Included under <slug:node>/fhir/.
urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="fhir-metadata"),
    path("<str:resource_type>", views.TypeView.as_view(), name="fhir-type"),
    path("<str:resource_type>/<str:logical_id>", views.InstanceView.as_view(), name="fhir-instance"),
    path(
        "<str:resource_type>/<str:logical_id>/_history",
        views.InstanceHistoryView.as_view(),
        name="fhir-history-instance",
    ),
    path(
        "<str:resource_type>/<str:logical_id>/_history/<str:version_id>",
        views.VersionView.as_view(),
        name="fhir-vread",
    ),
]
