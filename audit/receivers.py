"""Receivers for what Django itself reports; each only hands over to a service."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from audit.services import audit_login_failed
from gantry.auth_guard import auth_failed


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    """Django's authenticate() sends this for every failed login (the login page and the
    admin's), also one the guard refused before checking (``request.auth_refusal``); its
    ``credentials`` already have the password masked, and only the username is kept."""
    field = get_user_model().USERNAME_FIELD
    username = str(credentials.get(field) or credentials.get("username") or "")
    refused = getattr(request, "auth_refusal", None) is not None
    if not refused:
        auth_failed(username=username)
    audit_login_failed(
        username=username, path=request.path if request is not None else "", throttled=refused
    )
