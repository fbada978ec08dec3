"""A versioned model registry in S3.

Layout::

    <registry>/<name>/v0001/            the bundle files, metrics.json, params.json, provenance.json,
                                        MODEL_CARD.md, registration.json, and _COMPLETE (written last)
    <registry>/<name>/aliases/production.json   {"version", "uri", "digest", ...}

A version without ``_COMPLETE`` is incomplete and invisible: never listed, never resolved, never
aliased. The alias moves only after the uploaded bundle has been downloaded back and its checksums
verified. Registering the same run (same bundle digest and run id) again returns the existing
version. Version numbers are allocated by listing; two registrations racing for one number are not
guarded against (the KFP register step runs once per pipeline run).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from pathlib import Path

from facet_lib import storage
from facet_lib.bundle import FILES, read_config, verify_bundle
from facet_lib.errors import FacetError

_VERSION = re.compile(r"^(v\d{4})/_COMPLETE$")


class RegistryError(FacetError):
    """A registry URI, model name, version or alias is missing or malformed."""


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", name):
        raise RegistryError(f"model name '{name}': use 1-63 of a-z 0-9 . _ - (starting with a letter or digit)")


def versions(registry: str, name: str) -> list[str]:
    """Complete versions, oldest first."""
    return sorted(m[1] for k in storage.list_keys(f"{registry.rstrip('/')}/{name}") if (m := _VERSION.match(k)))


def model_card(name: str, version: str, cfg: dict, metrics: dict, provenance: dict) -> str:
    weights = cfg.get("weights", "?")
    lines = [
        f"# {name} {version}",
        "",
        "FACET-VLM 3D/4D facial expression recognition (three rendered views, CLIP backbone, CVSA + MTGF).",
        "",
        f"- Backbone: `{cfg['model']['clip_model']}`, weights: {weights}",
        f"- Labels (output order): {', '.join(cfg['labels'])}",
        f"- Render: mode {cfg['render'].get('mode')}, views {cfg['render'].get('yaws')}, "
        f"size {cfg['render'].get('size')}",
        f"- Training data: {provenance.get('dataset', '?')} ({provenance.get('data_note', '')})",
        f"- Dataset index hash: `{provenance.get('index_sha256', '?')}`; "
        f"code commit: `{provenance.get('git_commit', '?')}`",
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    if "random" in str(weights):
        lines += [
            "",
            "**Random backbone weights**: these metrics show that the pipeline works; they are not the "
            "paper's results and the model is not fit for any use.",
        ]
    lines += [
        "",
        "Intended use: research on facial expression recognition from 3D/4D scans. Not for decisions about people.",
    ]
    return "\n".join(lines) + "\n"


def register(
    bundle_dir: str | Path,
    registry: str,
    name: str,
    run_id: str,
    metrics: dict,
    params: dict,
    provenance: dict,
    alias: str | None = "production",
) -> dict:
    """Upload a verified bundle as a new version (or return the run's existing one); move ``alias``."""
    _check_name(name)
    registry = registry.rstrip("/")
    digest = verify_bundle(bundle_dir)
    cfg = read_config(bundle_dir)
    run_key = hashlib.sha256(f"{digest}:{run_id}".encode()).hexdigest()
    base = f"{registry}/{name}"
    storage.ensure_bucket(storage.split_s3(base)[0])
    existing = versions(registry, name)
    info = None
    for v in reversed(existing):
        reg = storage.get_json(f"{base}/{v}/registration.json")
        if reg and reg.get("run_key") == run_key:
            info = reg
            break
    if info is None:
        v = f"v{(int(existing[-1][1:]) + 1) if existing else 1:04d}"
        uri = f"{base}/{v}"
        with tempfile.TemporaryDirectory() as extra:
            e = Path(extra)
            (e / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
            (e / "params.json").write_text(json.dumps(params, indent=1, default=str))
            (e / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str))
            (e / "MODEL_CARD.md").write_text(model_card(name, v, cfg, metrics, provenance))
            for f in FILES + ("CHECKSUMS.json",):
                storage.upload_file(Path(bundle_dir) / f, f"{uri}/{f}")
            storage.upload_dir(e, uri)
        info = {
            "name": name,
            "version": v,
            "uri": uri,
            "digest": digest,
            "run_id": run_id,
            "run_key": run_key,
            "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        storage.put_json(f"{uri}/registration.json", info)
        storage.put_json(f"{uri}/_COMPLETE", {"digest": digest})  # last: the version is now visible
    if alias:
        with tempfile.TemporaryDirectory() as check:
            fetched = storage.download_prefix(info["uri"], check, only=list(FILES) + ["CHECKSUMS.json"])
            if verify_bundle(fetched) != digest:
                raise RegistryError(f"{info['uri']}: uploaded bundle differs from the registered digest")
        storage.put_json(
            f"{base}/aliases/{alias}.json",
            {
                **{k: info[k] for k in ("version", "uri", "digest")},
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        info = {**info, "alias": alias}
    return info


def resolve(ref: str) -> str:
    """``s3://reg/name@alias`` or ``s3://reg/name/vNNNN`` → the complete version's URI."""
    if "@" in ref:
        base, alias = ref.rsplit("@", 1)
        a = storage.get_json(f"{base.rstrip('/')}/aliases/{alias}.json")
        if a is None:
            raise RegistryError(f"{ref}: no alias '{alias}'")
        return a["uri"]
    if storage.get_json(f"{ref.rstrip('/')}/_COMPLETE") is None:
        raise RegistryError(f"{ref}: not a complete registered version")
    return ref.rstrip("/")


def fetch(ref: str, dest: str | Path) -> Path:
    """Download a registered version (by URI or alias) and verify it; returns the local bundle folder."""
    uri = resolve(ref)
    out = storage.download_prefix(uri, Path(dest), only=list(FILES) + ["CHECKSUMS.json"])
    verify_bundle(out)
    return out
