"""The MODEL_CARD.md the registry writes beside each version (stdlib only)."""

from __future__ import annotations


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
