from __future__ import annotations

from django.urls import path

from prescribing import views

urlpatterns = [
    path("patients", views.prescriptions_page, name="patients"),
    path("prescriptions", views.prescriptions_page, name="prescriptions"),
]
