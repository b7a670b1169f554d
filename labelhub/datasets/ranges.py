"""HTTP range requests (RFC 9110 section 14) for downloading stored files: one byte range per request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from django.http import HttpResponse, StreamingHttpResponse

RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
CHUNK = 256 * 1024


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range `(first, last)` a `Range` header asks for, or None to send the whole file
    (no header, a malformed one, or several ranges: a server may ignore Range). Raises Unsatisfiable."""
    if not header:
        return None
    match = RANGE_RE.match(header)
    if match is None:
        return None
    first_s, last_s = match.groups()
    if not first_s and not last_s:
        return None
    if not first_s:  # suffix: the last N bytes
        n = int(last_s)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return max(size - n, 0), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        raise Unsatisfiable
    return first, min(last, size - 1)


def _read(fh: IO[bytes], first: int, length: int) -> Iterator[bytes]:
    try:
        fh.seek(first)
        left = length
        while left > 0:
            data = fh.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        fh.close()


def ranged_file_response(
    *,
    fh: IO[bytes],
    size: int,
    range_header: str | None,
    filename: str,
    content_type: str,
    etag: str = "",
    if_range: str | None = None,
) -> HttpResponse:
    """200 with the whole file, 206 with one range (Content-Range), or 416 when the range lies past the end."""
    if if_range and etag and if_range.strip() != f'"{etag}"':
        range_header = None  # the file changed since the client's partial download: send all of it
    try:
        wanted = parse_range(range_header, size)
    except Unsatisfiable:
        fh.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = wanted if wanted else (0, size - 1)
    length = max(last - first + 1, 0)
    response = StreamingHttpResponse(
        _read(fh, first, length), status=206 if wanted else 200, content_type=content_type
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if etag:
        response["ETag"] = f'"{etag}"'
    if wanted:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return response
