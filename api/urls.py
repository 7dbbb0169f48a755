from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from api import views

router = DefaultRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("designs", views.DesignViewSet, basename="design")
router.register("deployments", views.DeploymentViewSet, basename="deployment")
router.register("change-sets", views.ChangeSetViewSet, basename="change-set")
router.register("targets", views.TargetViewSet, basename="target")
router.register("tokens", views.TokenViewSet, basename="token")

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    # The paths have no trailing slash: a file name and a stream, not collections.
    path(
        "designs/<id:pk>/diagram.svg",
        views.DesignViewSet.as_view({"get": "diagram_svg"}),
        name="design-diagram-svg",
    ),
    path(
        "designs/<id:pk>/diagram.png",
        views.DesignViewSet.as_view({"get": "diagram_png"}),
        name="design-diagram-png",
    ),
    path(
        "deployments/<id:pk>/events/stream",
        views.DeploymentViewSet.as_view({"get": "stream"}),
        name="deployment-events-stream",
    ),
    *router.urls,
]
