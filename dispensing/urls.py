from __future__ import annotations

from django.urls import path

from dispensing import views

urlpatterns = [
    path("worklist", views.worklist_page, name="worklist"),
    path("find", views.find_page, name="find-token"),
    path("find/check", views.find_check, name="find-token-check"),
    path("dispensed", views.dispensed_page, name="dispensed"),
    path("dispensing/<str:prescription_id>", views.prescription_page, name="pharmacy-prescription"),
    path("dispensing/<str:prescription_id>/start", views.prescription_start, name="pharmacy-start"),
    path("dispensing/<str:prescription_id>/return", views.prescription_return, name="pharmacy-return"),
    path(
        "dispensing/<str:prescription_id>/items/<str:item_id>/dispense",
        views.item_dispense,
        name="pharmacy-dispense",
    ),
    path(
        "dispensing/<str:prescription_id>/items/<str:item_id>/amend",
        views.item_amend,
        name="pharmacy-amend",
    ),
]
