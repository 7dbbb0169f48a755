"""Gantry's URLs plus one view that fails, for the 500 page's tests (an internal error cannot
be provoked through Gantry's own pages on purpose)."""

from django.urls import path

from gantry.urls import handler404, handler500  # noqa: F401
from gantry.urls import urlpatterns as gantry_urlpatterns


def boom(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [path("boom/", boom), path("api/boom/", boom), *gantry_urlpatterns]
