"""Errors the annotation services raise; the API turns each into its HTTP answer."""


class AnnotationError(Exception):
    """Base class: ``message`` is for the user; ``field`` names the request field at fault."""

    status_code = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field

    def as_dict(self) -> dict:
        return {self.field: [self.message]} if self.field else {"detail": self.message}


class Invalid(AnnotationError):
    """The request's values are wrong (400)."""


class NotAllowed(AnnotationError):
    """The user's role or assignment does not allow this (403)."""

    status_code = 403


class Conflict(AnnotationError):
    """The object's state does not allow this now, e.g. a locked call (409)."""

    status_code = 409
