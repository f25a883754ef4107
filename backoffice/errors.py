"""API errors and the Flask handlers that turn every failure into ``{"error", "message"}`` JSON."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Invalid",
    "NotFound",
    "TooLarge",
    "Unauthorized",
    "register_error_handlers",
]

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine ``code`` and a human ``message``."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class Invalid(ApiError):
    status, code = 422, "invalid"


def _answer(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message}), status


def register_error_handlers(app: Flask) -> None:
    """JSON for API errors, werkzeug HTTP errors (404, 405, 413 ...) and, last, anything unexpected."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        return _answer(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        if status >= 500:
            log.error("HTTP %s: %s", status, exc.description)
            return _answer(500, "internal", "internal error")
        return _answer(status, _HTTP_CODES.get(status, "error"), exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        return _answer(500, "internal", "internal error")
