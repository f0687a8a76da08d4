"""Reads about nodes, always through the signed-in user's memberships."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from nodes.models import Membership, Node


def nodes_for_user(*, user: AbstractBaseUser) -> QuerySet[Node]:
    """Return the nodes this user works at."""
    return Node.objects.filter(memberships__user=user).distinct()


def membership_for_user(*, user: AbstractBaseUser, slug: str, kind: str = "") -> Membership:
    """Return the user's membership at the node (of that kind, if given: "" for any); 404 (not
    403) so other nodes stay unseen."""
    membership = Membership.objects.select_related("node").filter(user=user, node__slug=slug).first()
    if membership is None or (kind and membership.node.kind != kind):
        raise Http404("No such node")
    return membership
