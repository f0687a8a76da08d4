from __future__ import annotations

from django.urls import path

from dispensing import views

urlpatterns = [
    path("worklist", views.worklist_page, name="worklist"),
    path("find", views.find_page, name="find-token"),
    path("dispensed", views.dispensed_page, name="dispensed"),
]
