from __future__ import annotations

from django.http import JsonResponse
from django.urls import path


def hello(request):
    """Answer a small JSON object."""
    return JsonResponse({"resourceType": "Basic", "id": "trivial", "status": "ok"})


urlpatterns = [path("", hello)]
