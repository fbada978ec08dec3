"""S3-compatible object storage (the only module that imports boto3).

Endpoint, credentials and region come from the standard environment variables
(AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION),
so the same code talks to SeaweedFS, MinIO and AWS S3.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from facet_lib.errors import FacetError
from facet_lib.files import atomic_write


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


TRANSFER_WORKERS = 16  # objects in flight per download_prefix/upload_dir (S3 latency-bound, not CPU)

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
        aws_access_key_id=e["AWS_ACCESS_KEY_ID"] or None,  # the cache key's values, not a later environment
        aws_secret_access_key=e["AWS_SECRET_ACCESS_KEY"] or None,
        aws_session_token=e["AWS_SESSION_TOKEN"] or None,
        region_name=e["AWS_DEFAULT_REGION"] or e["AWS_REGION"] or "us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=TRANSFER_WORKERS,  # one connection per transfer thread
        ),
    )


def client():
    """An S3 client for the current standard AWS environment variables (cached per setting)."""
    try:
        return _client(tuple(os.environ.get(k) for k in _ENV))
    except Exception as e:  # e.g. only one of the key id / secret set
        raise _wrap(e, "connect to", "S3") from None


NO_CREDENTIALS = (
    "no S3 credentials found: set AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(for the local server: eval $(python -m pipelines.s3_server env))"
)


def _code(e: Exception) -> str:
    return ((getattr(e, "response", None) or {}).get("Error") or {}).get("Code", "")


def _wrap(e: Exception, op: str, uri: str) -> StorageError:
    if type(e).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return StorageError(f"{op} {uri} at endpoint {endpoint()}: {NO_CREDENTIALS}")
    return StorageError(f"{op} {uri} at endpoint {endpoint()} failed: {_code(e) or type(e).__name__}: {e}")


def download_file(uri: str, dest: str | Path) -> Path:
    """Fetch one object to ``dest`` (multipart for large objects), atomically."""
    bucket, key = split_s3(uri)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        return atomic_write(dest, lambda tmp: client().download_file(bucket, key, str(tmp)))
    except Exception as e:
        raise _wrap(e, "download", uri) from None


MULTIPART_THRESHOLD = 16 * 1024 * 1024


def _transfer():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD)


def ensure_bucket(bucket: str) -> None:
    c = client()
    try:
        c.head_bucket(Bucket=bucket)
    except Exception as e:
        if _code(e) not in ("404", "NoSuchBucket", "NotFound"):
            raise _wrap(e, "head bucket", f"s3://{bucket}") from None
        try:
            c.create_bucket(Bucket=bucket)
        except Exception as e2:
            if _code(e2) != "BucketAlreadyOwnedByYou":  # a concurrent creator won: fine
                raise _wrap(e2, "create bucket", f"s3://{bucket}") from None


def upload_file(path: str | Path, uri: str, metadata: dict[str, str] | None = None) -> str:
    """One object; multipart above 16 MiB. A single PUT/complete is atomic for readers. ``metadata``:
    user metadata stored with the object (``x-amz-meta-*``; read back by ``head``)."""
    bucket, key = split_s3(uri)
    extra = {"ExtraArgs": {"Metadata": dict(metadata)}} if metadata else {}
    try:
        client().upload_file(str(path), bucket, key, Config=_transfer(), **extra)
    except Exception as e:
        raise _wrap(e, "upload to", uri) from None
    return uri


def head(uri: str) -> dict | None:
    """``{"size", "etag", "metadata"}`` of one object, or None when it does not exist."""
    bucket, key = split_s3(uri)
    try:
        r = client().head_object(Bucket=bucket, Key=key)
    except Exception as e:
        if _code(e) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _wrap(e, "head", uri) from None
    return {"size": r["ContentLength"], "etag": r.get("ETag", "").strip('"'), "metadata": r.get("Metadata", {})}


def list_objects(uri: str) -> list[dict]:
    """Objects under an s3:// prefix: ``{"key" (relative to the prefix), "size", "etag"}``, key order."""
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    out: list[dict] = []
    try:
        for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [
                {"key": o["Key"][len(prefix) :], "size": o["Size"], "etag": o.get("ETag", "").strip('"')}
                for o in page.get("Contents", [])
            ]
    except Exception as e:
        raise _wrap(e, "list", uri) from None
    return out


def list_keys(uri: str) -> list[str]:
    """Keys under an s3:// prefix (relative to it)."""
    return [o["key"] for o in list_objects(uri)]


def _parallel(fn: Callable[[str], object], items: Iterable[str], workers: int) -> None:
    """``fn(item)`` for every item on a bounded thread pool; the first failure cancels what has not
    started and is raised once the running transfers have finished (no thread left writing)."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        for it in items:
            fn(it)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="s3") as pool:
        futures = [pool.submit(fn, it) for it in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
    for f in futures:
        if f.done() and not f.cancelled() and f.exception():
            raise f.exception()


def upload_dir(src: str | Path, uri: str, skip: set[str] | None = None, workers: int = TRANSFER_WORKERS) -> list[str]:
    """Every file below ``src`` to ``uri/<relative path>`` (``workers`` at a time); returns the relative
    paths. Each object appears whole or not at all (one PUT / multipart complete per file)."""
    src = Path(src)
    bucket, _ = split_s3(uri)
    ensure_bucket(bucket)  # also creates the cached client before any thread needs it
    rels = [f.relative_to(src).as_posix() for f in sorted(p for p in src.rglob("*") if p.is_file())]
    rels = [r for r in rels if not (skip and r in skip)]
    _parallel(lambda rel: upload_file(src / rel, f"{uri.rstrip('/')}/{rel}"), rels, workers)
    return rels


def contained(dest: str | Path, rel: str) -> Path:
    """``dest/rel``, refusing keys that would leave ``dest`` (S3 accepts ``..`` and absolute-looking keys)."""
    root = Path(dest).resolve()
    target = (root / rel).resolve()
    if not rel or rel.startswith("/") or "\\" in rel or not target.is_relative_to(root) or target == root:
        raise StorageError(f"object key {rel!r} escapes the destination {root}; refusing to write outside it")
    return target


def download_prefix(uri: str, dest: str | Path, only: list[str] | None = None, workers: int = TRANSFER_WORKERS) -> Path:
    """Objects under ``uri`` (or just the relative keys in ``only``) into ``dest`` (overwriting),
    ``workers`` at a time. Every key is checked to stay inside ``dest`` before any file is written; each
    file appears whole (written aside, renamed) and, when listed, must have the listed size."""
    dest = Path(dest)
    listed = {o["key"]: o["size"] for o in list_objects(uri)} if only is None else {}
    rels = list(listed) if only is None else list(only)
    targets = dict(zip(rels, (contained(dest, rel) for rel in rels)))  # every key before any file
    client()  # create the cached client here, not concurrently in the threads

    def fetch(rel: str) -> None:
        path = download_file(f"{uri.rstrip('/')}/{rel}", targets[rel])
        size = path.stat().st_size
        if rel in listed and size != listed[rel]:
            path.unlink(missing_ok=True)
            raise StorageError(f"download {uri.rstrip('/')}/{rel}: got {size} bytes, the listing says {listed[rel]}")

    _parallel(fetch, rels, workers)
    return dest


def put_bytes(
    uri: str,
    body: bytes,
    if_absent: bool = False,
    content_type: str = "application/octet-stream",
    if_match: str | None = None,
) -> bool:
    """One object. Conditional writes return False, writing nothing, when their condition fails:
    ``if_absent`` creates only a new key (``If-None-Match: *``); ``if_match`` replaces only the version
    with that ETag (compare-and-swap)."""
    bucket, key = split_s3(uri)
    extra = {"IfNoneMatch": "*"} if if_absent else {}
    if if_match:
        extra["IfMatch"] = if_match
    try:
        client().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **extra)
    except Exception as e:
        if extra and _code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "NoSuchKey"):
            return False
        raise _wrap(e, "put", uri) from None
    return True


def copy(src: str, dst: str) -> None:
    """Server-side copy of one object (multipart above 16 MiB)."""
    sb, sk = split_s3(src)
    db, dk = split_s3(dst)
    try:
        client().copy({"Bucket": sb, "Key": sk}, db, dk, Config=_transfer())
    except Exception as e:
        raise _wrap(e, f"copy {src} to", dst) from None


def delete(uri: str) -> None:
    """Delete one object (no error when it does not exist)."""
    bucket, key = split_s3(uri)
    try:
        client().delete_object(Bucket=bucket, Key=key)
    except Exception as e:
        raise _wrap(e, "delete", uri) from None


def delete_prefix(uri: str) -> int:
    """Delete every object under an s3:// prefix; returns how many."""
    bucket, prefix = split_s3(uri)
    keys = [f"{prefix.rstrip('/')}/{k}" for k in list_keys(uri)]
    try:
        for i in range(0, len(keys), 1000):
            client().delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]})
    except Exception as e:
        raise _wrap(e, "delete", uri) from None
    return len(keys)


def put_json(uri: str, obj: dict, if_absent: bool = False, if_match: str | None = None) -> bool:
    """Write a JSON object; conditional like ``put_bytes``."""
    return put_bytes(uri, json.dumps(obj, indent=1).encode(), if_absent, "application/json", if_match)


def get_json(uri: str) -> dict | None:
    """The JSON object at ``uri``, or None when it does not exist."""
    return get_json_versioned(uri)[0]


def get_json_versioned(uri: str) -> tuple[dict | None, str | None]:
    """The JSON object at ``uri`` and its ETag (for a later ``put_json(..., if_match=etag)``), or (None, None)."""
    bucket, key = split_s3(uri)
    try:
        r = client().get_object(Bucket=bucket, Key=key)
        body = r["Body"].read()
    except Exception as e:
        if _code(e) in ("NoSuchKey", "404", "NotFound"):
            return None, None
        raise _wrap(e, "get", uri) from None
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StorageError(f"{uri}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise StorageError(f"{uri}: expected a JSON object, got {type(obj).__name__}")
    return obj, r.get("ETag")


def local_path(uri: str | Path, cache_dir: str | Path) -> Path:
    """A local path for ``uri``: itself when local, else a cached download."""
    if not is_s3(uri):
        p = Path(uri)
        if not p.exists():
            raise StorageError(f"{p}: no such file")
        return p
    bucket, key = split_s3(str(uri))
    dest = contained(cache_dir, f"{bucket}/{key}")
    return dest if dest.exists() else download_file(str(uri), dest)
