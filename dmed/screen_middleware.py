"""The screens' middleware, which the API's requests pass by.

The machine-facing paths (each node's FHIR base, its notification endpoint, its SMART token
endpoint, an engine's relayed answers) authenticate every call by its bearer token and answer
JSON, never a page. Sessions, the signed-in user, messages, htmx, idle sign-out, the screens'
audit have nothing to do there, and cost a FHIR read by id about a fifth
of its time in process (0.22 ms of 1.03 ms, benchmarks/hotpath.py): each is wrapped here so that
such a request goes straight past it and its hooks. The pages' Content-Security-Policy is built
per response; an API answer gets a fixed one that allows nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from csp.middleware import CSPMiddleware as PageCSP
from django.contrib.auth.middleware import AuthenticationMiddleware as Authentication
from django.contrib.messages.middleware import MessageMiddleware as Messages
from django.contrib.sessions.middleware import SessionMiddleware as Sessions
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxMiddleware as Htmx

from dmed import middleware
from nodes import auditing

# /<node>/fhir…, /<node>/notifications…, /<node>/oauth/token, /<engine>/relayed/<id>
API_PATH = re.compile(r"/[^/]+/(?:fhir(?:/|$)|notifications(?:/|$)|oauth/token$|relayed/)")
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def is_api(request: HttpRequest) -> bool:
    return API_PATH.match(request.path_info) is not None


def screens_only(factory: Callable, on_api: Callable[[HttpResponse], None] | None = None) -> Callable:
    """The middleware `factory` makes, for screens only: an API request calls on to the next
    (then on_api with its response, when given). A class stays the class's subclass, which is what
    Django's checks look for; its hooks let API requests by too."""
    if not isinstance(factory, type):

        def wrapped(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
            inner = factory(get_response)
            return lambda request: get_response(request) if is_api(request) else inner(request)

        wrapped.__name__ = factory.__name__
        return wrapped

    def call(self, request: HttpRequest) -> HttpResponse:
        if not is_api(request):
            return factory.__call__(self, request)
        response = self.get_response(request)
        if on_api is not None:
            on_api(response)
        return response

    methods: dict[str, Callable] = {"__call__": call}
    for hook in ("process_view", "process_exception"):
        if hasattr(factory, hook):
            methods[hook] = _for_screens(getattr(factory, hook))
    if hasattr(factory, "process_template_response"):
        inner = factory.process_template_response
        methods["process_template_response"] = lambda self, request, response: (
            response if is_api(request) else inner(self, request, response)
        )
    return type(factory.__name__, (factory,), methods)


def _for_screens(hook: Callable) -> Callable:
    return lambda self, request, *args: None if is_api(request) else hook(self, request, *args)


def _api_policy(response: HttpResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", API_POLICY)


CSPMiddleware = screens_only(PageCSP, on_api=_api_policy)
SessionMiddleware = screens_only(Sessions)
AuthenticationMiddleware = screens_only(Authentication)
MessageMiddleware = screens_only(Messages)
HtmxMiddleware = screens_only(Htmx)
vary_on_htmx = screens_only(middleware.vary_on_htmx)
idle_sign_out = screens_only(middleware.idle_sign_out)
screen_audit = screens_only(auditing.screen_audit)
