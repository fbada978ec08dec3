"""Pretrained CLIP weights fetched once into S3 under their content, then used from there by every step.

A connected cluster runs with ``pretrained=openai``: the ``fetch-weights`` pipeline step resolves the open_clip
tag with open_clip's own download (``open_clip.pretrained.download_pretrained``: the Hugging Face Hub through
``huggingface_hub.hf_hub_download``, which honours ``HF_ENDPOINT``, ``HF_TOKEN`` and proxies, or the tag's URL),
checks that the file loads into the model, and stores it as ``{store}/sha256/{digest}/{file name}`` with the
digest in the object's metadata and an index ``{store}/tags/{model}/{tag}.json``. A second run finds the index
and the object and downloads nothing. The model settings every GPU step (and the registered bundle) get then
name that S3 copy as ``checkpoint`` and no tag, with the tag's activation kept as ``quick_gelu`` (open_clip's
pretrained config: True for ``openai``; a weights file does not carry it), which is exactly what an air-gapped
cluster passes (``checkpoint=s3://… quick_gelu=True``, both printed by ``python -m facet_lib.weights``): both run
identically afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
import tempfile
from pathlib import Path

from facet_lib import storage
from facet_lib.config import ModelConfig, from_dict, to_params
from facet_lib.config.deploy import WEIGHTS, WeightsConfig
from facet_lib.errors import ConfigError
from facet_lib.files import sha256_file

META_DIGEST = "sha256"  # S3 user metadata key (x-amz-meta-sha256) of a stored checkpoint


def tag_index_uri(store: str, model_name: str, tag: str) -> str:
    return f"{store.rstrip('/')}/tags/{model_name}/{tag}.json"


def content_uri(store: str, digest: str, filename: str) -> str:
    """The content key; the file name keeps its suffix (open_clip reads ``.safetensors`` by suffix)."""
    return f"{store.rstrip('/')}/sha256/{digest}/{filename}"


def download_tag(model_name: str, tag: str, cache_dir: str | Path) -> tuple[Path, str]:
    """The tag's weights file, downloaded by open_clip (Hugging Face Hub first, as open_clip prefers),
    and where it came from (``hf://repo@commit/file`` or the URL)."""
    import open_clip
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    from facet_lib.models.backbone import register_configs

    register_configs()
    if model_name not in open_clip.list_models():
        raise ConfigError(f"model.clip_model: unknown open_clip model {model_name!r}")
    cfg = get_pretrained_cfg(model_name, tag)
    if not cfg:
        known = open_clip.list_pretrained_tags_by_model(model_name)
        raise ConfigError(f"model.pretrained: open_clip has no tag {tag!r} for {model_name} (known: {known})")
    try:
        path = Path(download_pretrained(cfg, cache_dir=str(cache_dir)))
    except Exception as e:  # no network, a hub error, an HF_HUB_OFFLINE=1 environment
        where = cfg.get("hf_hub") or cfg.get("url")
        raise ConfigError(
            f"model.pretrained: could not download {model_name}/{tag} from {where} ({type(e).__name__}: "
            f"{str(e)[:300]}); on a cluster without internet store the weights once with `python -m "
            f"facet_lib.weights {model_name} {tag} s3://…` elsewhere and pass checkpoint=s3://…"
        ) from None
    if cfg.get("hf_hub") and "snapshots" in path.parts:  # huggingface_hub cache: …/snapshots/<commit>/<file>
        repo = os.path.split(cfg["hf_hub"])[0]  # open_clip's form: "org/name/" or "org/name/file"
        source = f"hf://{repo}@{path.parent.name}/{path.name}"
    else:
        source = cfg.get("url") or str(path)
    return path, source


def check_loads(model_name: str, path: str | Path) -> None:
    """The file loads into ``model_name`` (every tensor's name and shape), or ConfigError naming it."""
    from facet_lib.models.backbone import create_clip

    try:
        create_clip(model_name, checkpoint=str(path))
    except Exception as e:
        raise ConfigError(f"{path}: not {model_name} weights ({type(e).__name__}: {str(e)[:300]})") from None


def store_tag(model_name: str, tag: str, store: str = WEIGHTS.store, cache_dir: str | Path | None = None) -> dict:
    """The S3 copy of ``model_name``'s open_clip ``tag``: reused when the index and the object exist (and
    agree), else downloaded once, checked and stored. Returns the index entry (``checkpoint``, ``sha256``,
    ``source``, ``bytes``, ``fetched``: whether this call downloaded it)."""
    WeightsConfig(store=store)  # validates the prefix
    storage.ensure_bucket(storage.split_s3(store)[0])
    index_uri = tag_index_uri(store, model_name, tag)
    entry = storage.get_json(index_uri)
    from facet_lib.models.backbone import register_configs, resolve_quick_gelu

    register_configs()
    quick = resolve_quick_gelu(model_name, tag)  # the tag's activation (a weights file does not carry it)
    if entry:
        entry = {**entry, "quick_gelu": quick}  # an index written before the activation was recorded
        obj = storage.head(entry["checkpoint"])
        if obj and obj["metadata"].get(META_DIGEST) == entry["sha256"]:
            print(f"facet: weights {model_name}/{tag}: {entry['checkpoint']} (stored before)", flush=True)
            return {**entry, "fetched": False}
    with tempfile.TemporaryDirectory() as tmp:
        path, source = download_tag(model_name, tag, cache_dir or tmp)
        digest = sha256_file(path)
        check_loads(model_name, path)
        uri = content_uri(store, digest, path.name)
        if (storage.head(uri) or {}).get("metadata", {}).get(META_DIGEST) != digest:
            meta = {META_DIGEST: digest, "open-clip-model": model_name, "open-clip-tag": tag, "source": source}
            storage.upload_file(path, uri, metadata=meta)
        size = path.stat().st_size
    entry = {
        "model": model_name,
        "tag": tag,
        "checkpoint": uri,
        "sha256": digest,
        "bytes": size,
        "source": source,
        "quick_gelu": quick,
        "stored_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    storage.put_json(index_uri, entry)
    print(f"facet: weights {model_name}/{tag}: downloaded {size / 1e6:.0f} MB from {source} → {uri}", flush=True)
    return {**entry, "fetched": True}


def weights_step(model: dict, store: str = WEIGHTS.store) -> dict:
    """The model settings with a pretrained tag replaced by its S3 copy (``checkpoint=s3://…``); settings
    without a tag pass unchanged. Returns ``{"model_config", "weights"}``."""
    cfg = from_dict(ModelConfig, model, "model")
    if not cfg.pretrained:
        note = {"checkpoint": cfg.checkpoint or "", "fetched": False, "source": "checkpoint" if cfg.checkpoint else ""}
        return {"model_config": model, "weights": note}
    from facet_lib.models.backbone import register_configs, resolve_quick_gelu

    register_configs()
    quick = resolve_quick_gelu(cfg.clip_model, cfg.pretrained, cfg.quick_gelu)  # the tag's (or the explicit) one
    entry = store_tag(cfg.clip_model, cfg.pretrained, store)
    resolved = dataclasses.replace(cfg, pretrained=None, checkpoint=entry["checkpoint"], quick_gelu=quick)
    return {"model_config": to_params(resolved), "weights": entry}  # KFP form: no None ("" = not given)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit(
            "usage: python -m facet_lib.weights MODEL TAG [S3_PREFIX]   e.g. ViT-B-16 openai s3://facet-models/weights\n"
            "  stores the open_clip tag's weights under their SHA-256 and prints checkpoint=s3://… and quick_gelu=…\n"
            "  (the tag's activation, which the weights file does not carry) for runs"
        )
    try:
        out = store_tag(sys.argv[1], sys.argv[2], *(sys.argv[3:] or [WEIGHTS.store]))
    except (ConfigError, storage.StorageError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"checkpoint={out['checkpoint']}")
    print(f"quick_gelu={out['quick_gelu']}")
