from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter
from django.views.generic import RedirectView

from api import pages as api_pages
from gantry.login import LoginView
from gantry.parsing import IdConverter

# Before the includes below: their patterns use <id:...>.
register_converter(IdConverter, "id")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="designer:design_list", permanent=False)),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("designs/", include("designer.urls")),
    path("deployments/", include("deployer.urls")),
    path("teams/", include("teams.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("account/tokens/", api_pages.token_list, name="api_tokens"),
    path("account/tokens/<id:pk>/revoke/", api_pages.token_revoke_view, name="api_token_revoke"),
]

handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
