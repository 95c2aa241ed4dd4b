"""Domain errors. Each carries the HTTP status and the contract's exception name; lib.api maps them
to responses in exactly one place."""

from __future__ import annotations


class ApiError(Exception):
    """Base of every error the contract names (§2)."""

    status = 500
    exception = "InternalException"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ValidationError(ApiError):
    status = 400
    exception = "ValidationException"


class NotFound(ApiError):
    status = 404
    exception = "NotFoundException"


class MethodNotAllowed(ApiError):
    status = 405
    exception = "MethodNotAllowedException"


class Conflict(ApiError):
    status = 409
    exception = "ConflictException"


class PayloadTooLarge(ApiError):
    status = 413
    exception = "PayloadTooLargeException"


class Unauthorized(ApiError):
    """Deployed: no caller identity (missing or invalid credentials)."""

    status = 401
    exception = "UnauthorizedException"


class Forbidden(ApiError):
    """Deployed: the caller's role does not allow the method, or the tenant / group is not granted."""

    status = 403
    exception = "ForbiddenException"
