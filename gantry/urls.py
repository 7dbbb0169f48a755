from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter
from django.views.generic import RedirectView

from api import pages as api_pages
from gantry.login import LoginView
from gantry.parsing import IdConverter

# Before the URL patterns are imported: they use <id:...>.
register_converter(IdConverter, "id")

from pages import urls as pages_urls  # noqa: E402

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="designer:design_list", permanent=False)),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Each app's pages plus the page layer's, which compose several apps (pages/urls.py).
    path("designs/", include(pages_urls.designer_patterns)),
    path("deployments/", include(pages_urls.deployer_patterns)),
    path("teams/", include(pages_urls.teams_patterns)),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("account/tokens/", api_pages.token_list, name="api_tokens"),
    path("account/tokens/<id:pk>/revoke/", api_pages.token_revoke_view, name="api_token_revoke"),
]

handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "gantry.errors.handler404"
handler500 = "gantry.errors.handler500"
