from __future__ import annotations

from django.urls import path

from prescribing import views

urlpatterns = [
    path("patients", views.patients_page, name="patients"),
    path("patients/new", views.patient_register_page, name="patient-register"),
    path("patients/<str:nhs_number>", views.patient_page, name="patient"),
    path("patients/<str:nhs_number>/prescribe", views.prescription_start, name="prescription-start"),
    path("medicines", views.medicines_page, name="medicine-search"),
    path("prescriptions", views.prescriptions_page, name="prescriptions"),
    path("prescriptions/new/<uuid:token>", views.draft_page, name="draft"),
    path("prescriptions/new/<uuid:token>/review", views.draft_review_page, name="draft-review"),
    path("prescriptions/<str:prescription_id>", views.prescription_page, name="prescription"),
    path("prescriptions/<str:prescription_id>/cancel", views.prescription_cancel, name="prescription-cancel"),
    path(
        "prescriptions/<str:prescription_id>/renominate",
        views.prescription_renominate,
        name="prescription-renominate",
    ),
    path("prescriptions/<str:prescription_id>/token", views.token_page, name="prescription-token"),
]
