"""A versioned model registry in S3 (stdlib + ``facet_lib.storage``; no torch).

Layout::

    <registry>/<name>/_staging/<token>/   one registration's uploads, before it owns a version number
    <registry>/<name>/v0001/_CLAIM        conditional create (If-None-Match: *): whoever creates it owns v0001
    <registry>/<name>/v0001/...           bundle files, metrics.json, params.json, provenance.json,
                                          MODEL_CARD.md, registration.json, and _COMPLETE ({"digest"}, last)
    <registry>/<name>/aliases/production.json   {"version", "uri", "digest", "updated_at", "history"}

A registration uploads to its own staging prefix, claims the next free version number with a
conditional create, copies the staged files into the version server-side, downloads them back and
verifies them against its own digest, and writes ``_COMPLETE`` last. Racing registrations therefore
get distinct versions and never mix files; a version without ``_COMPLETE`` (a crash, a lost claim)
is invisible: never listed, resolved or aliased. Every fetch compares the downloaded bundle with the
digest that ``_COMPLETE`` and the alias record, and refuses a mismatch. The object store must honour
conditional writes (AWS S3, SeaweedFS 4.x, MinIO do); the registry checks once per bucket and refuses
a store that ignores them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from facet_lib import storage
from facet_lib.bundle_format import ALL_FILES, BundleError, read_config, verify_bundle
from facet_lib.config.deploy import DEFAULT_ALIAS
from facet_lib.errors import FacetError
from facet_lib.model_card import model_card

_VERSION_KEY = re.compile(r"^(v\d{4,})/")
_COMPLETE_KEY = re.compile(r"^(v\d{4,})/_COMPLETE$")
_REF = re.compile(r"^(s3://.+)/([a-z0-9][a-z0-9._-]{0,62})(?:@([A-Za-z0-9._-]+)|/(v\d{4,}))$")
META = ("metrics.json", "params.json", "provenance.json")
HISTORY = 50  # alias moves remembered for rollback


class RegistryError(FacetError):
    """A registry URI, model name, version or alias is missing or malformed, or a version fails its digest."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", name):
        raise RegistryError(f"model name '{name}': use 1-63 of a-z 0-9 . _ - (starting with a letter or digit)")


def _check_alias(alias: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", alias):
        raise RegistryError(f"alias '{alias}': use 1-63 of A-Z a-z 0-9 . _ - (starting with a letter or digit)")


def parse_ref(ref: str) -> tuple[str, str, str | None, str | None]:
    """``s3://reg/name@alias`` or ``s3://reg/name/vNNNN`` → (registry, name, version, alias)."""
    m = _REF.match(ref.rstrip("/"))
    if not m:
        raise RegistryError(f"{ref}: expected s3://<registry>/<name>@<alias> or s3://<registry>/<name>/vNNNN")
    return m[1], m[2], m[4], m[3]


def _vnum(v: str) -> int:
    return int(v[1:])


def versions(registry: str, name: str) -> list[str]:
    """Complete versions, oldest first."""
    keys = storage.list_keys(f"{registry.rstrip('/')}/{name}")
    return sorted((m[1] for k in keys if (m := _COMPLETE_KEY.match(k))), key=_vnum)


def models(registry: str) -> list[str]:
    """Model names with at least one complete version."""
    keys = storage.list_keys(registry.rstrip("/"))
    return sorted({k.split("/", 1)[0] for k in keys if k.count("/") == 2 and k.endswith("/_COMPLETE")})


_CONDITIONAL_OK: set[tuple[str, str]] = set()


def check_conditional_writes(base: str) -> None:
    """Refuse an object store that ignores ``If-None-Match: *`` (version claims would not be exclusive)."""
    bucket = storage.split_s3(base)[0]
    if (storage.endpoint(), bucket) in _CONDITIONAL_OK:
        return
    probe = f"{base}/_staging/probe-{uuid.uuid4().hex}"
    first = storage.put_bytes(probe, b"1", if_absent=True)
    second = storage.put_bytes(probe, b"2", if_absent=True)
    storage.delete(probe)
    if not (first and not second):
        raise RegistryError(
            f"the object store at {storage.endpoint()} ignores conditional writes (If-None-Match: *), so two "
            "registrations could claim one version; use a store that honours them (AWS S3, SeaweedFS 4.x, MinIO)"
        )
    _CONDITIONAL_OK.add((storage.endpoint(), bucket))


def _existing(base: str, vers: list[str], run_key: str, dedup_key: str | None) -> dict | None:
    for v in reversed(vers):
        reg = storage.get_json(f"{base}/{v}/registration.json") or {}
        if reg.get("run_key") == run_key or (dedup_key and reg.get("dedup_key") == dedup_key):
            return reg
    return None


def _claim(base: str, token: str, run_key: str) -> str:
    """The next free version number, owned through a conditional create of its ``_CLAIM``."""
    used = {_vnum(m[1]) for k in storage.list_keys(base) if (m := _VERSION_KEY.match(k))}
    n = max(used, default=0) + 1
    for _ in range(1000):
        v = f"v{n:04d}"
        claim = {"token": token, "run_key": run_key, "claimed_at": _now()}
        if storage.put_json(f"{base}/{v}/_CLAIM", claim, if_absent=True):
            if (storage.get_json(f"{base}/{v}/_CLAIM") or {}).get("token") != token:
                raise RegistryError(
                    f"{base}/{v}: claim overwritten by another registration; the store broke If-None-Match"
                )
            return v
        n += 1
    raise RegistryError(f"{base}: could not claim a version number after 1000 attempts")


def _verify_remote(uri: str, digest: str) -> None:
    """Download a version's bundle files and check them against ``digest``."""
    with tempfile.TemporaryDirectory(prefix="facet-verify-") as check:
        try:
            verify_bundle(storage.download_prefix(uri, check, only=list(ALL_FILES)), expected_digest=digest)
        except BundleError as e:
            raise RegistryError(f"{uri}: stored bundle fails verification: {e}") from None


def register(
    bundle_dir: str | Path,
    registry: str,
    name: str,
    run_id: str,
    metrics: dict,
    params: dict,
    provenance: dict,
    alias: str | None = DEFAULT_ALIAS,
    dedup_key: str | None = None,
) -> dict:
    """Upload a verified bundle as a new version and move ``alias`` to it.

    The same run (bundle digest + run id) registered again returns its existing version (and moves the
    alias). A complete version with the same ``dedup_key`` is returned as is with ``reused=True``:
    nothing is uploaded and the alias does not move.
    """
    _check_name(name)
    if alias:
        _check_alias(alias)
    base = f"{registry.rstrip('/')}/{name}"
    digest = verify_bundle(bundle_dir)
    cfg = read_config(bundle_dir)
    run_key = hashlib.sha256(f"{digest}:{run_id}".encode()).hexdigest()
    storage.ensure_bucket(storage.split_s3(base)[0])
    found = _existing(base, versions(registry, name), run_key, dedup_key)
    if found and dedup_key and found.get("dedup_key") == dedup_key:
        return {**found, "reused": True}
    reg = {"name": name, "run_id": run_id, "run_key": run_key, "digest": digest, "dedup_key": dedup_key}
    info = found or _upload(Path(bundle_dir), base, reg, cfg, metrics, params, provenance)
    if alias:
        set_alias(registry, name, info["version"], alias, verify=found is not None)
        info = {**info, "alias": alias}
    return info


def _upload(bundle_dir: Path, base: str, reg: dict, cfg: dict, metrics: dict, params: dict, provenance: dict) -> dict:
    """Stage → claim → copy → verify → ``_COMPLETE``; returns the registration record."""
    check_conditional_writes(base)
    token = uuid.uuid4().hex
    staging = f"{base}/_staging/{token}"
    try:
        info = _stage_and_commit(bundle_dir, base, staging, token, reg, cfg, metrics, params, provenance)
    except BaseException:
        try:  # best effort: a claimed version without _COMPLETE stays invisible; its number is not reused
            storage.delete_prefix(staging)
        except Exception:
            pass
        raise
    storage.delete_prefix(staging)
    return info


def _stage_and_commit(
    bundle_dir: Path,
    base: str,
    staging: str,
    token: str,
    reg: dict,
    cfg: dict,
    metrics: dict,
    params: dict,
    provenance: dict,
) -> dict:
    """Upload to ``staging``, claim a version, copy into it, verify, mark it complete."""
    name, digest = reg["name"], reg["digest"]
    with tempfile.TemporaryDirectory() as extra:
        e = Path(extra)
        for fname, obj in zip(META, (metrics, params, provenance)):
            (e / fname).write_text(json.dumps(obj, indent=1, default=str))
        for f in ALL_FILES:
            storage.upload_file(bundle_dir / f, f"{staging}/{f}")
        storage.upload_dir(e, staging)
    v = _claim(base, token, reg["run_key"])
    uri = f"{base}/{v}"
    for f in (*ALL_FILES, *META):
        storage.copy(f"{staging}/{f}", f"{uri}/{f}")
    storage.put_bytes(
        f"{uri}/MODEL_CARD.md", model_card(name, v, cfg, metrics, provenance).encode(), False, "text/markdown"
    )
    info = {**reg, "version": v, "uri": uri, "registered_at": _now()}
    storage.put_json(f"{uri}/registration.json", info)
    _verify_remote(uri, digest)
    if (storage.get_json(f"{uri}/_CLAIM") or {}).get("token") != token:
        raise RegistryError(f"{uri}: the claim changed while registering; not marking it complete")
    if not storage.put_json(f"{uri}/_COMPLETE", {"digest": digest, "token": token}, if_absent=True):
        raise RegistryError(f"{uri}: already marked complete by another writer")
    return info


def lookup(ref: str) -> dict:
    """A complete version by reference: ``{"registry", "name", "version", "uri", "digest"}`` (+ ``alias``).
    An alias whose digest differs from the version's ``_COMPLETE`` is refused."""
    registry, name, version, alias = parse_ref(ref)
    base = f"{registry}/{name}"
    a = None
    if alias:
        a = storage.get_json(f"{base}/aliases/{alias}.json")
        if a is None:
            raise RegistryError(f"{ref}: no alias '{alias}'")
        version = a.get("version")
        if not isinstance(version, str) or not re.fullmatch(r"v\d{4,}", version):
            raise RegistryError(f"{base}/aliases/{alias}.json: 'version' must be vNNNN, got {version!r}")
    done = storage.get_json(f"{base}/{version}/_COMPLETE")
    if done is None:
        raise RegistryError(f"{base}/{version}: not a complete registered version")
    if a is not None and a.get("digest") != done.get("digest"):
        raise RegistryError(
            f"{ref}: alias digest {a.get('digest')} differs from {version}'s recorded digest {done.get('digest')}"
        )
    out = {"registry": registry, "name": name, "version": version, "uri": f"{base}/{version}", "digest": done["digest"]}
    return {**out, "alias": alias} if alias else out


def resolve(ref: str) -> str:
    """``s3://reg/name@alias`` or ``s3://reg/name/vNNNN`` → the complete version's URI."""
    return lookup(ref)["uri"]


def fetch(ref: str, dest: str | Path) -> Path:
    """Download a registered version into a fresh folder ``dest/<digest>`` and verify it against the
    digest the registry recorded; returns that folder. A folder already there is reused only when it
    verifies; nothing from another version is ever mixed in."""
    info = lookup(ref)
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if not os.access(dest, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as e:
        raise RegistryError(f"fetch {ref}: cannot write into {dest}: {e.strerror or e}") from None
    target = dest / info["digest"]
    if target.exists():
        try:
            verify_bundle(target, expected_digest=info["digest"])
            return target
        except BundleError:
            shutil.rmtree(target)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dest))
    try:
        storage.download_prefix(info["uri"], tmp, only=list(ALL_FILES))
        try:
            verify_bundle(tmp, expected_digest=info["digest"])
        except BundleError as e:
            raise RegistryError(f"{ref} ({info['uri']}): refusing the downloaded bundle: {e}") from None
        try:
            tmp.rename(target)
        except OSError:  # a concurrent fetch of the same digest won: use its verified folder
            verify_bundle(target, expected_digest=info["digest"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def aliases(registry: str, name: str) -> dict[str, dict]:
    """Every alias of a model: ``{alias: {"version", "uri", "digest", "updated_at", "history"}}``."""
    base = f"{registry.rstrip('/')}/{name}/aliases"
    return {
        k[: -len(".json")]: storage.get_json(f"{base}/{k}") or {}
        for k in storage.list_keys(base)
        if k.endswith(".json") and "/" not in k
    }


def list_versions(registry: str, name: str) -> list[dict]:
    """Complete versions, oldest first, each with its registration record and the aliases naming it."""
    _check_name(name)
    base = f"{registry.rstrip('/')}/{name}"
    by_version: dict[str, list[str]] = {}
    for al, a in aliases(registry, name).items():
        by_version.setdefault(a.get("version", ""), []).append(al)
    out = []
    for v in versions(registry, name):
        reg = storage.get_json(f"{base}/{v}/registration.json") or {}
        out.append({**reg, "version": v, "uri": f"{base}/{v}", "aliases": sorted(by_version.get(v, []))})
    return out


def show(ref: str) -> dict:
    """One version (by ``…/vNNNN`` or ``…@alias``): registration record, metrics and the aliases naming it."""
    info = lookup(ref)
    reg = storage.get_json(f"{info['uri']}/registration.json") or {}
    metrics = storage.get_json(f"{info['uri']}/metrics.json") or {}
    named = [al for al, a in aliases(info["registry"], info["name"]).items() if a.get("version") == info["version"]]
    return {**reg, **info, "metrics": metrics, "aliases": sorted(named)}


def set_alias(registry: str, name: str, version: str, alias: str = DEFAULT_ALIAS, verify: bool = True) -> dict:
    """Point ``alias`` at a complete version (after downloading and verifying it, unless ``verify`` is
    False because the caller just did); the previous target is kept in the alias history."""
    _check_name(name)
    _check_alias(alias)
    info = lookup(f"{registry.rstrip('/')}/{name}/{version}")
    if verify:
        _verify_remote(info["uri"], info["digest"])
    key = f"{registry.rstrip('/')}/{name}/aliases/{alias}.json"

    def move(old: dict | None) -> dict:
        history = list(old.get("history", [])) if old else []
        if old and old.get("version") != version:
            history = (history + [{k: old.get(k) for k in ("version", "digest", "updated_at")}])[-HISTORY:]
        return {
            "version": version,
            "uri": info["uri"],
            "digest": info["digest"],
            "updated_at": _now(),
            "history": history,
        }

    return {**_update_alias(key, move), "alias": alias, "name": name}


def _update_alias(key: str, change) -> dict:
    """Read-modify-write of an alias record as a compare-and-swap on its ETag (retried when another
    writer moved it in between), so concurrent moves never lose a history entry."""
    for attempt in range(20):
        old, etag = storage.get_json_versioned(key)
        record = change(old)
        if storage.put_json(key, record, if_absent=old is None, if_match=etag):
            return record
        time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise RegistryError(f"{key}: could not update the alias (20 concurrent changes in a row)")


def promote(ref: str, alias: str = DEFAULT_ALIAS) -> dict:
    """Move ``alias`` to the version ``ref`` names (``…/vNNNN`` or another alias such as ``…@staging``)."""
    info = lookup(ref)
    return set_alias(info["registry"], info["name"], info["version"], alias)


def rollback(registry: str, name: str, alias: str = DEFAULT_ALIAS) -> dict:
    """Move ``alias`` back to the version it named before its last move."""
    key = f"{registry.rstrip('/')}/{name}/aliases/{alias}.json"
    complete = set(versions(registry, name))
    moved: dict = {}

    def back(cur: dict | None) -> dict:
        if cur is None:
            raise RegistryError(f"{key}: no alias '{alias}' to roll back")
        history = list(cur.get("history", []))
        # skip entries that name the current version or a version that is no longer complete
        while history and (
            history[-1].get("version") == cur.get("version") or history[-1].get("version") not in complete
        ):
            history.pop()
        if not history:
            raise RegistryError(f"{registry.rstrip('/')}/{name}@{alias}: no earlier version to roll back to")
        prev = history.pop()
        if prev["version"] not in moved:
            info = lookup(f"{registry.rstrip('/')}/{name}/{prev['version']}")
            _verify_remote(info["uri"], info["digest"])
            moved[prev["version"]] = info
        info = moved[prev["version"]]
        moved["from"] = cur["version"]
        return {
            "version": info["version"],
            "uri": info["uri"],
            "digest": info["digest"],
            "updated_at": _now(),
            "history": history,
        }

    record = _update_alias(key, back)
    return {**record, "alias": alias, "name": name, "rolled_back_from": moved["from"]}
