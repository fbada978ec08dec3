"""``train.init_from``: the trained bundle a run starts from (fine-tuning; the paper "fine-tune[s] FACET-VLM"
for 4DME, §4.5). A local bundle folder or a registry version/alias; always verified before use.

Kept out of ``facet_lib.train`` (train and bundle do not import each other): the steps load the start
model here and hand it to ``train.shared.Runner(start=...)``.
"""

from __future__ import annotations

from pathlib import Path

from facet_lib.bundle import load_bundle, verify_bundle
from facet_lib.errors import ConfigError, FacetError
from facet_lib.models.model import FacetVLM
from facet_lib.storage import is_s3


def load_start(ref: str, cache_dir: str | Path) -> FacetVLM:
    """The bundle at ``ref`` as a model (backbone, head, temperature); its ``weights`` names the bundle.

    ``ref``: a local bundle folder, or ``s3://…/registry/NAME@ALIAS`` / ``…/NAME/vNNNN`` (fetched into
    ``cache_dir/init-from`` and verified against the digest the registry recorded)."""
    if is_s3(ref):
        from facet_lib import registry

        path = registry.fetch(ref, Path(cache_dir) / "init-from")
    else:
        path = Path(ref)
        if not path.is_dir():
            raise ConfigError(f"train.init_from {ref}: not a bundle folder or an s3:// registry reference")
    try:
        digest = verify_bundle(path)
        model, _, cfg = load_bundle(path)
    except FacetError as e:
        raise ConfigError(f"train.init_from {ref}: {e}") from None
    model.weights = f"bundle {digest[:16]} of {cfg.get('weights', '?')}"
    return model
