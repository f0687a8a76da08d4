"""Site-wide response rules."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import resolve_url
from django.utils.cache import patch_cache_control, patch_vary_headers


def vary_on_htmx(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Screens answer one URL with the page, or with a partial for htmx: say so (Vary), so that a
    browser going back never shows a cached partial as the page."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        return response

    return middleware


def no_store(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Screens and FHIR answers carry patient data: no browser or proxy may keep a copy. (Static
    files are answered before this, with their own long-lived caching.)"""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        patch_cache_control(response, no_store=True, private=True)
        return response

    return middleware


def idle_sign_out(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Sign out a user who has viewed no page for SESSION_IDLE_SECONDS. A screen's htmx poll (a
    GET it makes by itself) neither counts as a view nor keeps the session alive."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            polled = request.method == "GET" and request.headers.get("HX-Request") == "true"
            last = request.session.get("active", now)
            if now - last > settings.SESSION_IDLE_SECONDS:
                logout(request)
                if polled:  # take the whole page to the sign-in screen, not the partial
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = f"{resolve_url(settings.LOGIN_URL)}?next={request.path}"
                    return response
            elif not polled:
                request.session["active"] = now
        return get_response(request)

    return middleware


def refuse_nul(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """A NUL character in the query string or path (%00) is no one's data, and no database stores
    it: answer 400 before any view takes it to a query (FHIR paths with an OperationOutcome)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.GET.items()):
            if "/fhir" in request.path:
                outcome = {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "error",
                            "code": "invalid",
                            "diagnostics": "The request holds a NUL character.",
                        }
                    ],
                }
                return JsonResponse(outcome, status=400, content_type="application/fhir+json")
            return HttpResponseBadRequest("The request holds a NUL character.", content_type="text/plain")
        return get_response(request)

    return middleware
