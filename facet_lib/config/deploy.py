"""Cluster settings of the InferenceService (the deploy step, the generated manifests) and of the
pretrained-weights store: one default each, in KServe's and Knative's own vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

from facet_lib.config.codec import check_choices, setting
from facet_lib.errors import ConfigError

# KServe's serving.kserve.io/deploymentMode values (facet_lib/configs/admission/kserve.json, from KServe's
# pkg/constants): Standard = raw Kubernetes Deployment (KServe >= 0.16; RawDeployment is its name before),
# Knative = Knative Service (KServe >= 0.16; Serverless before). ModelMesh serves other runtimes, not this one.
DEPLOYMENT_MODES = ("Standard", "RawDeployment", "Knative", "Serverless")
DEPLOY_TARGETS = ("none", "kserve", "local")  # the pipeline's deploy_target; local: kfp.local runs only
DEFAULT_ALIAS = "production"  # the registry alias a run moves and a deploy serves


@dataclass(frozen=True)
class DeployConfig:
    mode: str = setting(
        "Standard",
        "KServe deploymentMode: Standard (raw Deployment; RawDeployment on KServe < 0.16) | "
        "Knative (Knative Service; Serverless on KServe < 0.16)",
        DEPLOYMENT_MODES,
    )
    accelerator: str = setting("nvidia.com/gpu", "GPU resource the GPU steps and the predictor request")
    gpu_taint: str = setting(
        "nvidia.com/gpu", "taint key of GPU nodes, tolerated by the GPU steps and (raw mode) the predictor"
    )
    gpu_node_selector: str = setting(
        "nvidia.com/gpu.present=true", "label=value of the GPU nodes, a nodeSelector in raw mode ('' = none)"
    )
    pull_secret: str = setting("", "image pull secret of the serve image ('' = none)")
    gpus: int = setting(1, "GPUs per predictor replica (0 = CPU)")

    def __post_init__(self) -> None:
        check_choices(self, "deploy")
        sel = self.gpu_node_selector
        if sel and (sel.count("=") != 1 or not sel.split("=")[0]):
            raise ConfigError(f"deploy.gpu_node_selector: expected label=value or '', got {sel!r}")
        if self.gpus < 0:
            raise ConfigError(f"deploy.gpus: expected >= 0, got {self.gpus}")

    @property
    def knative(self) -> bool:
        """Knative Service (KServe's Knative/Serverless mode) rather than a raw Deployment."""
        return self.mode in ("Knative", "Serverless")


@dataclass(frozen=True)
class WeightsConfig:
    store: str = setting(
        "s3://facet-models/weights", "s3:// prefix where pretrained CLIP weights are kept under their SHA-256"
    )

    def __post_init__(self) -> None:
        if not self.store.startswith("s3://") or len(self.store.rstrip("/")) <= len("s3://"):
            raise ConfigError(f"weights.store: expected an s3:// prefix, got {self.store!r}")


DEPLOY = DeployConfig()
WEIGHTS = WeightsConfig()
