"""S3-compatible object storage (the only module that imports boto3).

Endpoint, credentials and region come from the standard environment variables
(AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION),
so the same code talks to SeaweedFS, MinIO and AWS S3.
"""

from __future__ import annotations

import os
from pathlib import Path

from facet_lib.errors import FacetError


class StorageError(FacetError):
    """An object-store operation failed; names the endpoint, bucket and key."""


def is_s3(uri: str | Path) -> bool:
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    if not is_s3(uri):
        raise StorageError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    if len(bucket) < 3:
        raise StorageError(f"{uri}: bucket name must have at least 3 characters")
    return bucket, key


def endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS default"


def client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
        config=Config(
            signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}
        ),
    )


def _wrap(e: Exception, op: str, uri: str) -> StorageError:
    code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
    return StorageError(f"{op} {uri} at endpoint {endpoint()} failed: {code}: {e}")


def download_file(uri: str, dest: str | Path) -> Path:
    """Fetch one object to ``dest`` (multipart for large objects), atomically."""
    bucket, key = split_s3(uri)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        client().download_file(bucket, key, str(tmp))
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise _wrap(e, "download", uri) from None
    os.replace(tmp, dest)
    return dest


def local_path(uri: str | Path, cache_dir: str | Path) -> Path:
    """A local path for ``uri``: itself when local, else a cached download."""
    if not is_s3(uri):
        p = Path(uri)
        if not p.exists():
            raise StorageError(f"{p}: no such file")
        return p
    bucket, key = split_s3(str(uri))
    dest = Path(cache_dir) / bucket / key
    return dest if dest.exists() else download_file(str(uri), dest)
