"""Gantry's own 404 and 500 pages, with DEBUG on (``make run``) and off (production); the API
keeps answering JSON. Django's test client on the real database."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from designer.services import design_create
from designer.spec import DEFAULT_SPEC

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def test_a_missing_page_is_gantrys_404_not_a_list_of_url_patterns(debug, member_client):
    response = member_client.get("/designs/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html
    assert "URLconf" not in html and "api/schema" not in html  # Django's debug page lists them
    assert 'href="/designs/"' in html  # the way back, in the page's own top bar too


def test_another_teams_design_is_the_same_404(debug, client, team, member, outsider):
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    client.force_login(outsider)
    response = client.get(f"/designs/{design.pk}/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html and "Traceback" not in html


def test_an_internal_error_is_gantrys_500_and_is_logged(debug, settings, member, caplog):
    settings.ROOT_URLCONF = "tests.error_urls"
    client = Client(raise_request_exception=False)
    client.force_login(member)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "a bug in a view" not in html and "Traceback" not in html
    assert response["X-Request-ID"] in html  # the id to quote when reporting it
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and "a bug in a view" in str(logged[0].exc_info[1])


def test_the_api_still_answers_json(debug, settings, member_client):
    assert member_client.get("/api/no-such-thing/").json() == {"message": "Not found."}
    settings.ROOT_URLCONF = "tests.error_urls"
    client = Client(raise_request_exception=False)
    response = client.get("/api/boom/")
    assert response.status_code == 500
    assert response.json()["message"].startswith("Gantry hit an internal error")
