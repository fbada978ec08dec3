"""S3-compatible object storage (the only module that imports boto3).

Endpoint, credentials and region come from the standard environment variables
(AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION),
so the same code talks to SeaweedFS, MinIO and AWS S3.
"""

from __future__ import annotations

import functools
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


_ENV = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
)


@functools.lru_cache(maxsize=8)
def _client(env: tuple):
    import boto3
    from botocore.config import Config

    e = dict(zip(_ENV, env))
    # A session of its own: boto3's default session would keep credentials from before an env change.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=e["AWS_ENDPOINT_URL_S3"] or e["AWS_ENDPOINT_URL"] or None,
        region_name=e["AWS_DEFAULT_REGION"] or e["AWS_REGION"] or "us-east-1",
        config=Config(
            signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}
        ),
    )


def client():
    """An S3 client for the current standard AWS environment variables (cached per setting)."""
    return _client(tuple(os.environ.get(k) for k in _ENV))


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


MULTIPART_THRESHOLD = 16 * 1024 * 1024


def _transfer():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD)


def ensure_bucket(bucket: str) -> None:
    c = client()
    try:
        c.head_bucket(Bucket=bucket)
    except Exception as e:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise _wrap(e, "head bucket", f"s3://{bucket}") from None
        try:
            c.create_bucket(Bucket=bucket)
        except Exception as e2:
            raise _wrap(e2, "create bucket", f"s3://{bucket}") from None


def upload_file(path: str | Path, uri: str) -> str:
    """One object; multipart above 16 MiB. A single PUT/complete is atomic for readers."""
    bucket, key = split_s3(uri)
    try:
        client().upload_file(str(path), bucket, key, Config=_transfer())
    except Exception as e:
        raise _wrap(e, "upload to", uri) from None
    return uri


def list_keys(uri: str) -> list[str]:
    """Keys under an s3:// prefix (relative to it)."""
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    keys: list[str] = []
    try:
        for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
    except Exception as e:
        raise _wrap(e, "list", uri) from None
    return keys


def upload_dir(src: str | Path, uri: str, skip: set[str] | None = None) -> list[str]:
    """Every file below ``src`` to ``uri/<relative path>``; returns the relative paths."""
    src = Path(src)
    bucket, _ = split_s3(uri)
    ensure_bucket(bucket)
    done = []
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = f.relative_to(src).as_posix()
        if skip and rel in skip:
            continue
        upload_file(f, f"{uri.rstrip('/')}/{rel}")
        done.append(rel)
    return done


def download_prefix(uri: str, dest: str | Path, only: list[str] | None = None) -> Path:
    """Objects under ``uri`` (or just the relative keys in ``only``) into ``dest``."""
    dest = Path(dest)
    for rel in only if only is not None else list_keys(uri):
        target = dest / rel
        if not target.exists():
            download_file(f"{uri.rstrip('/')}/{rel}", target)
    return dest


def put_json(uri: str, obj: dict) -> None:
    import json

    bucket, key = split_s3(uri)
    try:
        client().put_object(
            Bucket=bucket, Key=key, Body=json.dumps(obj, indent=1).encode(), ContentType="application/json"
        )
    except Exception as e:
        raise _wrap(e, "put", uri) from None


def get_json(uri: str) -> dict | None:
    """The JSON object at ``uri``, or None when it does not exist."""
    import json

    bucket, key = split_s3(uri)
    try:
        body = client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return None
        raise _wrap(e, "get", uri) from None
    return json.loads(body)


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
