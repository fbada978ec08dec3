"""What the cluster's controllers admit, checked offline: KServe's deployment modes and, in Knative mode,
Knative Serving's webhook with its default ``config-features``.

The rules are data taken from the controllers' own source (``facet_lib/configs/admission/kserve.json`` and
``knative-serving.json``, each naming its repository, commit and files). A schema check does not see them:
the InferenceService CRD accepts a pod-level ``nodeSelector`` in every mode, but in Knative mode KServe copies
the predictor's PodSpec into a Knative Service, whose webhook drops every field its masks do not let through
and answers "must not set the field(s): spec.template.spec.nodeSelector".
"""

from __future__ import annotations

import functools
import json
from importlib import resources

DATA = "facet_lib.configs"


@functools.cache
def rules(name: str) -> dict:
    """The vendored rules ``kserve`` or ``knative-serving``."""
    return json.loads(resources.files(DATA).joinpath("admission", f"{name}.json").read_text())


def mode_kind(mode: str) -> str:
    """``raw`` | ``knative`` | ``modelmesh`` for a deploymentMode annotation value; KeyError when unknown."""
    return rules("kserve")["modes"][mode]["kind"]


def _flag(flags: dict | None, name: str, default: str) -> bool:
    """A config-features flag lets its field through unless it is Disabled (fieldmask.go: ``!= Disabled``;
    features.go reads the value case-insensitively and ignores one that is none of Enabled/Allowed/Disabled)."""
    value = str((flags or {}).get(name, default)).lower()
    return (value if value in ("enabled", "allowed", "disabled") else default.lower()) != "disabled"


def knative_problems(pod: dict, flags: dict | None = None) -> list[str]:
    """Why Knative's webhook would refuse this PodSpec (the predictor's pod fields), given ``config-features``
    data (``flags``; None = a fresh install's defaults). Empty: admitted."""
    kn = rules("knative-serving")
    out: list[str] = []
    refused = []
    for key, value in pod.items():
        if key in kn["pod_spec_always_allowed"]:
            if key in kn["pod_spec_allowed_only_false"] and value is not False:
                refused.append(key)
            continue
        gate = kn["pod_spec_gated"].get(key)
        if gate is None or not _flag(flags, gate["flag"], gate["default"]):
            if key == "securityContext":
                continue  # checked field by field below
            refused.append(key)
    psc = pod.get("securityContext") or {}
    gate = kn["pod_spec_gated"]["securityContext"]
    if _flag(flags, gate["flag"], gate["default"]):
        allowed = set(kn["pod_security_context_when_enabled"])
    else:
        spd = kn["pod_security_context_secure_pod_defaults"]
        allowed = set(spd["passes"]) if _flag(flags, spd["flag"], spd["default"]) else set()
    refused += [f"securityContext.{k}" for k in psc if k not in allowed]
    if refused:
        fields = ", ".join(f"spec.template.spec.{k}" for k in refused)
        hint = sorted(
            {kn["pod_spec_gated"][k.split(".")[0]]["flag"] for k in refused if k.split(".")[0] in kn["pod_spec_gated"]}
        )
        out.append(
            f"must not set the field(s): {fields}"
            + (f" (config-features {kn['namespace']}/{kn['configmap']}: enable {', '.join(hint)})" if hint else "")
        )
    for i, vol in enumerate(pod.get("volumes") or []):
        for src in set(vol) - {"name"}:
            gate = kn["volume_sources_gated"].get(src)
            if src not in kn["volume_sources_always_allowed"] and (
                gate is None or not _flag(flags, gate["flag"], gate["default"])
            ):
                how = f" (enable {gate['flag']})" if gate else ""
                out.append(f"must not set the field(s): spec.template.spec.volumes[{i}].{src}{how}")
    ports = 0
    for i, c in enumerate(pod.get("containers") or []):
        where = f"spec.template.spec.containers[{i}]"
        extra = [k for k in c if k not in kn["container_allowed"]]
        if extra:
            out.append("must not set the field(s): " + ", ".join(f"{where}.{k}" for k in extra))
        sc = c.get("securityContext") or {}
        bad = [k for k in sc if k not in kn["container_security_context_allowed"]]
        bad += [k for k in kn["container_security_context_allowed_only_false"] if sc.get(k) not in (None, False)]
        cap = kn["capabilities_add"]
        if (sc.get("capabilities") or {}).get("add") and not _flag(flags, cap["flag"], cap["default"]):
            bad.append("capabilities.add")
        if bad:
            out.append("must not set the field(s): " + ", ".join(f"{where}.securityContext.{k}" for k in bad))
        if c.get("name") in kn["reserved_container_names"]:
            out.append(f"{where}.name: {c['name']!r} is a reserved container name")
        for e in c.get("env") or []:
            if e.get("name") in kn["reserved_env_vars"]:
                out.append(f"{where}.env: {e['name']!r} is a reserved environment variable")
        for p in c.get("ports") or []:
            ports += 1
            if str(p.get("containerPort")) in kn["reserved_ports"]:
                out.append(f"{where}.ports: {p['containerPort']} is a reserved port")
        for m in c.get("volumeMounts") or []:
            if m.get("mountPath", "").rstrip("/") in {p.rstrip("/") for p in kn["reserved_mount_paths"]}:
                out.append(f"{where}.volumeMounts: mountPath {m['mountPath']!r} is a reserved path")
    if ports > kn["max_container_ports"]:
        out.append("more than one container port is set: only a single port is allowed across all containers")
    return out


def problems(isvc: dict, flags: dict | None = None) -> list[str]:
    """Why KServe (and, in Knative mode, Knative with ``flags`` as its config-features) would refuse or
    silently ignore part of this InferenceService. Empty: admitted as written."""
    ks = rules("kserve")
    mode = (isvc.get("metadata", {}).get("annotations") or {}).get(ks["annotation"])
    if mode is None:
        return [
            f"no {ks['annotation']} annotation: the cluster's default mode would decide ({ks['default_when_absent']})"
        ]
    if mode not in ks["modes"]:
        return [f"{ks['annotation']}: {mode!r} is not a KServe deployment mode (known: {sorted(ks['modes'])})"]
    kind = mode_kind(mode)
    if kind == "modelmesh":
        return [f"{ks['annotation']}: ModelMesh serves ModelMesh runtimes, not a custom predictor container"]
    pred = isvc.get("spec", {}).get("predictor", {})
    out = []
    if "canaryTrafficPercent" in pred and kind not in ks["canary_traffic_percent_modes"]:
        out.append(
            f"spec.predictor.canaryTrafficPercent: only KServe's Knative reconciler reads it; in {mode} mode "
            "it has no effect (use mode Knative for a canary rollout)"
        )
    if kind == "knative":
        kserve_only = set(ks["component_extension_fields"]) | set(ks["predictor_model_fields"])
        out += knative_problems({k: v for k, v in pred.items() if k not in kserve_only}, flags)
    return out
