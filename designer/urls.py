from django.urls import path

from designer import views

app_name = "designer"

urlpatterns = [
    path("", views.design_list, name="design_list"),
    path("new/", views.design_new, name="design_new"),
    path("preview/", views.preview, name="preview"),
    path("diagram/", views.diagram_download, name="diagram_download"),
    path("<id:pk>/", views.design_edit, name="design_edit"),
    path("<id:pk>/versions/", views.design_versions, name="design_versions"),
    path("<id:pk>/diagram.<str:fmt>", views.design_diagram, name="design_diagram"),
]
