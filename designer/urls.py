from django.urls import path

from designer import views

app_name = "designer"

# Mounted through pages/urls.py, which adds the design page itself (pages/design.py).
urlpatterns = [
    path("", views.design_list, name="design_list"),
    path("preview/", views.preview, name="preview"),
    path("diagram/", views.diagram_download, name="diagram_download"),
    path("<id:pk>/versions/", views.design_versions, name="design_versions"),
    path("<id:pk>/diagram.<str:fmt>", views.design_diagram, name="design_diagram"),
    path(
        "<id:pk>/versions/<id:version>/cloudformation.<str:fmt>",
        views.design_template,
        name="design_template",
    ),
]
