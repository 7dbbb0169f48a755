from django.urls import path

from deployer import views

app_name = "deployer"

# Mounted through pages/urls.py, which adds the deployment's own page (pages/deployment.py).
urlpatterns = [
    path("", views.deployment_list, name="deployment_list"),
    path("<id:pk>/events/stream", views.deployment_stream, name="deployment_stream"),
    path("<id:pk>/cancel/", views.deployment_cancel, name="deployment_cancel"),
    path("<id:pk>/destroy/", views.deployment_destroy, name="deployment_destroy"),
    path("new/<id:design_pk>/", views.deployment_create, name="deployment_create"),
]
