"""The API tokens page: a user makes and revokes their own tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from api.models import ApiToken
from api.services import token_create, token_revoke
from audit.services import get_for_user_or_404


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    new_key = ""
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        try:
            token, new_key = token_create(user=request.user, name=request.POST.get("name", ""))
        except ValidationError as exc:
            errors = exc.messages
            status = 400
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    # The new key is rendered into this one answer (never a redirect through the session) and
    # the page is not cached, so the key is not kept anywhere.
    return render(
        request,
        "api/tokens.html",
        {"tokens": tokens, "new_key": new_key, "errors": errors},
        status=status,
    )


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_for_user_or_404(
        ApiToken.objects.filter(user=request.user), user=request.user, path=request.path, pk=pk
    )
    token_revoke(token=token, user=request.user)
    messages.info(request, f"Token {token.name} is revoked; requests with it now answer 401.")
    return redirect("api_tokens")
