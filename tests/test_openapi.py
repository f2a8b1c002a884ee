"""The JSON API is fully described: response models, error shapes, named path parameters."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from peerlift.app import iter_routes


def test_openapi_document_is_served(anon):
    spec = anon.get("/openapi.json").json()
    assert spec["info"]["title"] == "peerlift"
    paths = spec["paths"]
    for path in ("/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/me", "/api/v1/circles",
                 "/api/v1/circles/{circle_id}/posts", "/api/v1/posts/{post_id}", "/api/v1/posts/{post_id}/comments",
                 "/api/v1/comments/{comment_id}", "/api/v1/posts/{post_id}/reactions/{kind}",
                 "/api/v1/polls/{poll_id}/votes", "/api/v1/conversations",
                 "/api/v1/conversations/{conversation_id}/messages"):
        assert path in paths, path
    assert "/circles/{circle_id}" not in paths  # HTML pages stay out of the API document


PRE_SIGN_IN = {"/api/v1/auth/login", "/api/v1/auth/login/two-factor", "/api/v1/auth/signup",
               "/api/v1/auth/password/forgot", "/api/v1/auth/password/reset"}


def _api_routes(app):
    return [r for r in iter_routes(app) if isinstance(r, APIRoute) and r.path.startswith("/api/")]


def test_every_api_route_has_a_response_model_and_documents_its_errors(app):
    routes = _api_routes(app)
    assert len(routes) >= 30
    for route in routes:
        media = getattr(route.response_class, "media_type", "application/json")
        if route.status_code not in (202, 204) and media == "application/json":
            assert route.response_model is not None, f"{route.path} has no response model"
        documented = {int(code) for code in route.responses}
        assert documented, f"{route.path} documents no error responses"
        if route.path not in PRE_SIGN_IN:
            assert 401 in documented, f"{route.path} does not document 401"


def test_path_parameters_are_named_after_their_object(app):
    allowed = {"circle_id", "post_id", "comment_id", "poll_id", "user_id", "conversation_id", "kind",
               "notification_id", "protocol_version_id", "assignment_id", "arm_id", "review_item_id",
               "escalation_id", "instrument_key", "request_id", "card_id", "connection_request_id", "session_id",
               "study_id", "enrolment_id", "community_id", "report_id", "guide_entry_id", "application_id"}
    for route in _api_routes(app):
        for name in re.findall(r"{(\w+)}", route.path):
            assert name in allowed, f"{route.path}: {name}"


def test_unknown_api_route_uses_the_error_shape(anon):
    response = anon.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Nothing here.", "field": None}}
    response = anon.put("/api/v1/me")
    assert response.status_code in (403, 405)
    assert set(response.json()["error"]) == {"code", "message", "field"}


def test_an_id_beyond_what_the_database_stores_is_bad_input(world, client_for):
    from tests.conftest import assert_error

    alice = client_for(world.alice)
    assert_error(alice.get(f"/api/v1/users/{2**70}"), 422, "out_of_range")
    assert_error(alice.get(f"/api/v1/posts/{2**64}"), 422, "out_of_range")
