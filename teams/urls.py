from django.urls import path

from teams import views

app_name = "teams"

# Mounted through pages/urls.py, which adds the team's own page (pages/team.py).
urlpatterns = [
    path("", views.team_list, name="team_list"),
]
