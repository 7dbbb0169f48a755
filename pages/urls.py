"""Each app's URLs with the page layer's pages added, under the app's own URL names.

``designer:design_edit``, ``deployer:deployment_detail`` and ``teams:team_detail`` keep their
names and paths; their views are the page layer's because those pages compose several apps.
``gantry/urls.py`` mounts these lists instead of the apps' own.
"""

from django.urls import path

from deployer import urls as deployer_urls
from designer import urls as designer_urls
from pages import changes, deployment, design, team
from teams import urls as teams_urls

designer_patterns = (
    [
        *designer_urls.urlpatterns,
        path("new/", design.design_new, name="design_new"),
        path("<id:pk>/", design.design_edit, name="design_edit"),
        path("<id:pk>/changes/", changes.design_changes, name="design_changes"),
        path("<id:pk>/apply/", changes.design_apply, name="design_apply"),
        path("<id:pk>/versions/diff/", changes.design_version_diff, name="design_version_diff"),
    ],
    designer_urls.app_name,
)
deployer_patterns = (
    [
        *deployer_urls.urlpatterns,
        path("<id:pk>/", deployment.deployment_detail, name="deployment_detail"),
        path("<id:pk>/status.json", deployment.deployment_status, name="deployment_status"),
        path("<id:pk>/diagram.svg", deployment.deployment_diagram, name="deployment_diagram"),
        path("<id:pk>/drift/", deployment.deployment_drift_check, name="deployment_drift_check"),
        path("<id:pk>/repair/", deployment.deployment_repair, name="deployment_repair"),
    ],
    deployer_urls.app_name,
)
teams_patterns = (
    [*teams_urls.urlpatterns, path("<slug:slug>/", team.team_detail, name="team_detail")],
    teams_urls.app_name,
)
