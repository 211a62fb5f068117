"""One place that turns every refusal into an answer: JSON under ``/api/``, a page elsewhere.

Service errors keep their status, stable code and rule ID; HTTP errors (bad CSRF token, body too
large, wrong content type, unknown route) get a code of their own. Nothing here leaks a traceback.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from iacs.service.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleRefused,
    ServiceError,
    Unavailable,
)

_SERVICE_STATUS: dict[type[ServiceError], int] = {
    InvalidInput: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RuleRefused: 422,
    Unavailable: 503,
}
"""The HTTP status of each service error (the one place that knows; the service knows no HTTP)."""

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "rule_refused",
    429: "too_many_requests",
    503: "unavailable",
}


def status_of(exc: ServiceError) -> int:
    """The status of a service error: its class's, or its nearest base's (400 at the root)."""
    for kind in type(exc).__mro__:
        if kind in _SERVICE_STATUS:
            return _SERVICE_STATUS[kind]
    return 400


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(status: int, code: str, message: str, rule: str = "") -> Response:
    """The answer to a refusal, shaped for the API or for a person."""
    if wants_json():
        body: dict[str, str] = {"code": code, "message": message}
        if rule:
            body["rule"] = rule
        response = jsonify({"error": body})
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="iacs"'
        return response
    html = render_template("error.html", status=status, message=message, rule=rule, code=code)
    return Response(html, status=status, mimetype="text/html")


def init_app(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        return error_response(status_of(exc), exc.code, exc.message, exc.rule)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> Response:
        return error_response(
            400,
            "csrf_failed",
            "the form's security token is missing or expired; reload the page and try again",
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = "the request body is too large"
        return error_response(status, _HTTP_CODES.get(status, "error"), message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        app.logger.exception("unexpected error")
        return error_response(
            500, "internal_error", "something went wrong on our side; please try again"
        )
