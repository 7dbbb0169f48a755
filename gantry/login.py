"""The login page, answering 429 while ``gantry.auth_guard`` refuses the attempt."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.forms.forms import NON_FIELD_ERRORS


class LoginView(auth_views.LoginView):
    """Django's login page; a refused attempt (locked username, throttled address) gets the
    form again with the reason and when to retry, as a 429 with ``Retry-After``, and its
    password was never checked."""

    def form_invalid(self, form):
        refusal = getattr(self.request, "auth_refusal", None)
        if refusal is None:
            return super().form_invalid(form)
        form._errors[NON_FIELD_ERRORS] = form.error_class([refusal.message])
        context = self.get_context_data(form=form, refusal=refusal.message)
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(refusal.retry_after)
        return response
