"""Downloads of stored files (images, thumbnails, export archives), one function for every kind:
`stored_file_response`. HTTP range requests (RFC 9110 section 14, one byte range per request) and
If-Range are answered here for files on the filesystem; files kept on S3 are a redirect to a short-lived
presigned URL (S3 serves the range), or a proxy that forwards the client's byte range to S3.
django-storages' S3 file reads the whole object before it can seek, so a 1 KiB range of a 256 MiB export
would otherwise pull 256 MiB into the API process (docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import Storage
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse

CHUNK = 256 * 1024
# One byte range, the form S3 answers; anything else (several ranges, junk) gets the whole file, as a
# server may ignore Range (RFC 9110 section 14.2).
SINGLE_RANGE = re.compile(r"\s*bytes\s*=\s*(\d+\s*-\s*\d*|-\s*\d+)\s*", re.IGNORECASE)
RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


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


def _if_range_holds(if_range: str | None, etag: str) -> bool:
    """False when If-Range names another version than `etag`: the client's partial copy is stale and
    must get the whole file."""
    return not (if_range and etag and if_range.strip() != f'"{etag}"')


def _unsatisfiable(size: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{size}"
    response["Accept-Ranges"] = "bytes"
    return response


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
    disposition: str = "attachment",
) -> HttpResponse:
    """200 with the whole file, 206 with one range (Content-Range), or 416 when the range lies past the end."""
    if not _if_range_holds(if_range, etag):
        range_header = None
    try:
        wanted = parse_range(range_header, size)
    except Unsatisfiable:
        fh.close()
        return _unsatisfiable(size)
    first, last = wanted if wanted else (0, size - 1)
    length = max(last - first + 1, 0)
    response = StreamingHttpResponse(
        _read(fh, first, length), status=206 if wanted else 200, content_type=content_type
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    if etag:
        response["ETag"] = f'"{etag}"'
    if wanted:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return response


def is_s3(storage: Storage) -> bool:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # pragma: no cover - django-storages is a requirement
        return False
    return isinstance(storage, S3Storage)


@lru_cache(maxsize=4)
def _presigning_client(
    endpoint_url: str | None, region: str | None, access_key: str | None, secret_key: str | None
):
    """An S3 client that signs (SigV4) for the host clients reach, which may differ from the one the API
    reaches S3 by. Presigning is local computation: this client never opens a connection."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _key(storage: Storage, name: str) -> str:
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))


def presigned_url(
    *, storage: Storage, name: str, filename: str, content_type: str, disposition: str = "attachment"
) -> str:
    """A GET URL for `name` valid LABELHUB_S3_PRESIGN_SECONDS, answered by S3 with the given download
    file name and content type (S3 itself then honours Range and If-Range)."""
    endpoint = settings.LABELHUB_S3_PUBLIC_ENDPOINT_URL or storage.endpoint_url
    client = _presigning_client(endpoint, storage.region_name, storage.access_key, storage.secret_key)
    return client.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": storage.bucket_name,
            "Key": _key(storage, name),
            "ResponseContentDisposition": f'{disposition}; filename="{filename}"',
            "ResponseContentType": content_type,
        },
        ExpiresIn=settings.LABELHUB_S3_PRESIGN_SECONDS,
    )


def _chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()  # a client that goes away mid-transfer releases the connection to S3


def _proxy(
    *,
    storage: Storage,
    name: str,
    filename: str,
    content_type: str,
    disposition: str,
    range_header: str | None,
    etag: str,
) -> HttpResponse:
    from botocore.exceptions import ClientError

    params = {"Bucket": storage.bucket_name, "Key": _key(storage, name)}
    if range_header and SINGLE_RANGE.fullmatch(range_header):
        params["Range"] = range_header.replace(" ", "")
    try:
        obj = storage.connection.meta.client.get_object(**params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidRange":
            raise
        head = storage.connection.meta.client.head_object(Bucket=params["Bucket"], Key=params["Key"])
        return _unsatisfiable(head["ContentLength"])
    partial = "ContentRange" in obj
    response = StreamingHttpResponse(
        _chunks(obj["Body"]), status=206 if partial else 200, content_type=content_type
    )
    response["Content-Length"] = str(obj["ContentLength"])
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    if etag:
        response["ETag"] = f'"{etag}"'
    if partial:
        response["Content-Range"] = obj["ContentRange"]
    return response


def s3_download_response(
    *,
    storage: Storage,
    name: str,
    filename: str,
    content_type: str,
    range_header: str | None,
    if_range: str | None,
    etag: str = "",
    disposition: str = "attachment",
) -> HttpResponse | None:
    """The response for a stored file on S3 (LABELHUB_S3_DOWNLOAD: 302 to a presigned URL, or the bytes
    proxied with the client's Range), or None when the storage is not S3 (the caller serves it).

    `etag` is the file's SHA-256, the ETag clients see: S3's own ETag differs, so the proxy evaluates
    If-Range itself (a mismatch sends the whole file) and forwards Range to S3."""
    if not is_s3(storage):
        return None
    if settings.LABELHUB_S3_DOWNLOAD == "proxy":
        if not _if_range_holds(if_range, etag):
            range_header = None
        return _proxy(
            storage=storage,
            name=name,
            filename=filename,
            content_type=content_type,
            disposition=disposition,
            range_header=range_header,
            etag=etag,
        )
    response = HttpResponseRedirect(
        presigned_url(
            storage=storage, name=name, filename=filename, content_type=content_type, disposition=disposition
        )
    )
    response["Cache-Control"] = "private, no-store"  # the URL expires; never cache the redirect
    return response


def stored_file_response(
    *,
    file,
    filename: str,
    content_type: str,
    etag: str,
    range_header: str | None = None,
    if_range: str | None = None,
    disposition: str = "attachment",
) -> HttpResponse:
    """The response for a stored file (a Django FieldFile) wherever it is kept: on S3 as
    `s3_download_response` says, else streamed from storage with the client's byte range and If-Range.
    `etag` is the file's content digest (the ETag clients see)."""
    wanted: dict[str, Any] = {
        "range_header": range_header,
        "if_range": if_range,
        "etag": etag,
        "disposition": disposition,
    }
    on_s3 = s3_download_response(
        storage=file.storage, name=file.name, filename=filename, content_type=content_type, **wanted
    )
    if on_s3 is not None:
        return on_s3
    return ranged_file_response(
        fh=file.open("rb"), size=file.size, filename=filename, content_type=content_type, **wanted
    )
