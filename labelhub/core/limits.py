"""Cheap refusals before expensive reads: a request body is refused from its declared length, and an
upload is counted while it streams in, so a body over the limit is never read (or spooled) in full."""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler

from .errors import DomainError

# Room for the multipart boundaries, headers and small form fields around the files.
FORM_OVERHEAD_BYTES = 1024 * 1024


class RequestTooLarge(DomainError):
    status_code = 413
    code = "request_too_large"


class _SizeLimitHandler(FileUploadHandler):
    """First of the upload handlers: counts each file's bytes and the whole body's as they arrive and
    stops the upload at the first byte over a limit (the later handlers never see that chunk)."""

    def __init__(self, request, *, max_body: int, max_file: int, field: str) -> None:
        super().__init__(request)
        self.max_body, self.max_file, self.field = max_body, max_file, field
        self.total = 0
        self.file_bytes = 0
        self.seen: dict[str, int] = {}
        self.file_field = field

    def new_file(self, field_name, *args, **kwargs):
        super().new_file(field_name, *args, **kwargs)
        self.file_bytes = 0
        index = self.seen.get(field_name, -1) + 1
        self.seen[field_name] = index
        self.file_field = f"{field_name}[{index}]" if self.field.endswith("[]") else field_name

    def receive_data_chunk(self, raw_data, start):
        self.file_bytes += len(raw_data)
        self.total += len(raw_data)
        if self.file_bytes > self.max_file:
            raise DomainError(
                f"{self.file_name}: file is over the limit of {self.max_file} bytes.",
                field=self.file_field,
                code="file_too_large",
            )
        if self.total > self.max_body:
            raise RequestTooLarge(
                f"The upload is over the limit of {self.max_body} bytes.", field=self.field.rstrip("[]")
            )
        return raw_data

    def file_complete(self, file_size):
        return None


def request_size_limit(request, *, max_body: int, max_file: int, field: str) -> None:
    """Call before the request's body is parsed. Refuses (413) a declared Content-Length over
    `max_body`, then installs a handler that stops the upload while streaming when a file passes
    `max_file` bytes or the body passes `max_body` (a client may send more than it declared).
    `field` names the form field in errors; ending in "[]" (`files[]`), errors name the file's index."""
    django_request = getattr(request, "_request", request)
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_body:
        raise RequestTooLarge(
            f"The request declares {declared} bytes; the limit is {max_body}.", field=field.rstrip("[]")
        )
    handlers = list(django_request.upload_handlers)
    django_request.upload_handlers = [
        _SizeLimitHandler(django_request, max_body=max_body, max_file=max_file, field=field),
        *handlers,
    ]
