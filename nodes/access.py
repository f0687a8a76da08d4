"""Who may see and do what on a node's screens: every view names its node kind and roles."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from nodes.models import Membership
from nodes.selectors import membership_for_user

Role = Membership.Role


def member_view(kind: str, *, act: Iterable[str] = (), see: Iterable[str] = ()) -> Callable:
    """Wrap a screen of a node of one kind: a member of another node gets 404 (the node stays
    unseen), a member whose role may see (GET) or act (any other method) on it not gets 403.
    The view is called with the member's node as `node` and the membership on `request.member`."""
    may_act, may_see = set(act), set(see) | set(act)

    def decorate(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, node: str, *args, **kwargs) -> HttpResponse:
            member = membership_for_user(user=request.user, slug=node, kind=kind)
            allowed = may_see if request.method in ("GET", "HEAD") else may_act
            if member.role not in allowed:
                raise PermissionDenied(f"A {member.get_role_display().lower()} cannot do this here.")
            request.member = member
            return view(request, member.node, *args, **kwargs)

        return wrapped

    return decorate


def can(member: Membership, *roles: str) -> bool:
    """True when the member has one of the roles (for showing or hiding an action)."""
    return member.role in roles
