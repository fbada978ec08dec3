"""The FACET-VLM Kubeflow pipeline: one definition, run locally (kfp.local) or compiled for a cluster.

fingerprint (never cached) → ingest (cached by the data's content) ‖ configure (preset + overrides) →
fetch-weights (a pretrained tag → its S3 copy, stored once) →
render | rank-pool (ParallelFor over shard groups) → merge → extract-features → train-fold (ParallelFor
over folds) → evaluate (fan-in) → register (never cached; same data + settings + code = nothing new)
[→ cross-dataset test when a target is given] [→ deploy (never cached) when a target is given]
[→ λ search (tune-lambda ParallelFor → tune-report)] [→ ablations → fig4 (the run's row of Fig. 4)].
Needs a KFP backend ≥ 2.5 for `dsl.Collected` artifact fan-in in the open-source backend.
"""

from kfp import dsl, kubernetes

from components.ablations import ablations as ablations_task
from components.configure import configure
from components.cross_dataset import cross_dataset
from components.deploy import deploy
from components.evaluate import evaluate
from components.extract_features import extract_features
from components.fetch_weights import fetch_weights
from components.fig4 import fig4
from components.fingerprint import fingerprint
from components.ingest import ingest
from components.merge_views import merge_views
from components.rank_pool import rank_pool
from components.register import register
from components.render import render
from components.settings import ACCELERATOR, DEPLOY_CLUSTER, GPU_TAINT, IMAGE_PULL_SECRET, S3_SECRET, SERVE_IMAGE
from components.train_fold import train_fold
from components.tune_lambda import tune_lambda
from components.tune_report import tune_report
from facet_lib.config import TuneConfig
from facet_lib.config.data import DATA
from facet_lib.config.deploy import DEPLOY, WEIGHTS
from facet_lib.data import datasets

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION": "AWS_DEFAULT_REGION",
}


def _task(
    task: dsl.PipelineTask, cpu: str, memory: str, limit: str, s3: bool = True, cache: bool = True
) -> dsl.PipelineTask:
    """Resources (memory request and limit), retries on transient failures, caching, the image pull secret
    and, for steps that touch S3, the credentials from the Kubernetes secret."""
    if s3:
        kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=S3_ENV)
    if IMAGE_PULL_SECRET:
        kubernetes.set_image_pull_secrets(task, [IMAGE_PULL_SECRET])
    task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(limit)
    return task.set_retry(2, backoff_duration="30s").set_caching_options(cache)


REQUIRE_GPU = "facet-vlm/require-gpu"  # pod annotation read back as FACET_REQUIRE_GPU (Downward API)


def _gpu(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """One GPU of the configured type (a compile-time setting, like the images) on GPU-tainted nodes, and
    FACET_REQUIRE_GPU=1 so that the step fails at once instead of training on the CPU when no GPU is
    visible. The variable comes from a pod annotation through the Downward API: platform settings, which
    kfp.local ignores, so local CPU runs of the same pipeline are not refused."""
    task.set_accelerator_type(ACCELERATOR).set_accelerator_limit(1)
    kubernetes.add_toleration(task, key=GPU_TAINT, operator="Exists", effect="NoSchedule")
    kubernetes.add_pod_annotation(task, REQUIRE_GPU, "1")
    kubernetes.use_field_path_as_env(task, "FACET_REQUIRE_GPU", f"metadata.annotations['{REQUIRE_GPU}']")
    return task


@dsl.pipeline(name="render-train-register")
def render_train_register(
    index: dsl.Input[dsl.Dataset],
    shard_groups: list,
    fold_ids: list,
    data_uri: str,
    data_fingerprint: str,
    seed: int,
    model_config: dict,
    train_config: dict,
    render_config: dict,
    cross_data_uri: str,
    cross_dataset_name: str,
    cross_protocol: str,
    cross_label_map: dict,
    registry_uri: str,
    model_name: str,
    deploy_target: str,
    deploy_namespace: str,
    canary_percent: int,
    deploy_mode: str,
    lambda_search: bool,
    lambda_grid: list,
    tune_overrides: dict,
    ablations: bool,
):
    """Everything after ingest, as a sub-pipeline whose loops run over its own inputs (the parameters are
    the facet-vlm pipeline's, with the settings resolved by `configure`)."""
    with dsl.ParallelFor(shard_groups, parallelism=4) as group:
        args = dict(index=index, data_uri=data_uri, shards=group, render_config=render_config)
        r3 = _task(render(**args), "2", "8G", "12G")
        r4 = _task(rank_pool(**args), "2", "8G", "12G")
    merged = merge_views(scans=dsl.Collected(r3.outputs["views"]), sequences=dsl.Collected(r4.outputs["views"]))
    views = _task(merged, "1", "4G", "8G").outputs["views"]
    feats = extract_features(views=views, index=index, model_config=model_config, train_config=train_config)
    feats = _gpu(_task(feats, "4", "16G", "24G"))
    with dsl.ParallelFor(fold_ids, parallelism=4) as fold:
        tr = train_fold(
            views=views,
            index=index,
            features=feats.outputs["features"],
            fold=fold,
            model_config=model_config,
            train_config=train_config,
        )
        tr = _gpu(_task(tr, "4", "16G", "24G"))
    ev = evaluate(fold_models=dsl.Collected(tr.outputs["fold_model"]), index=index)
    ev = _task(ev, "1", "4G", "8G", s3=False)
    reg = register(
        views=views,
        index=index,
        fold_models=dsl.Collected(tr.outputs["fold_model"]),
        best_fold=ev.outputs["best_fold"],
        cv_table=ev.outputs["cv_table"],
        registry_uri=registry_uri,
        model_name=model_name,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        data_fingerprint=data_fingerprint,
    )
    reg = _task(reg, "2", "16G", "24G", cache=False)
    with dsl.If(cross_data_uri != "", name="cross-dataset"):
        tfp = _task(fingerprint(data_uri=cross_data_uri), "1", "1G", "2G", cache=False)
        ting = ingest(
            data_uri=cross_data_uri,
            data_fingerprint=tfp.outputs["fingerprint"],
            dataset=cross_dataset_name,
            protocol=cross_protocol,
            n_folds=2,
            seed=seed,
            shard_size=100000,
            render_tasks=1,
        )
        ting = _task(ting, "2", "8G", "12G")
        tviews = rank_pool(
            index=ting.outputs["index"], data_uri=cross_data_uri, shards=[0], render_config=render_config
        )
        tviews = _task(tviews, "2", "8G", "12G")
        cross = cross_dataset(
            source_views=views,
            target_views=tviews.outputs["views"],
            label_map=cross_label_map,
            model_config=model_config,
            train_config=train_config,
            protocol=cross_protocol,
        )
        _gpu(_task(cross, "4", "16G", "24G"))
    with dsl.If(deploy_target != "none", name="deploy"):
        dep = deploy(
            model_uri=reg.outputs["model_uri"],
            target=deploy_target,
            namespace=deploy_namespace,
            name=model_name,
            canary_percent=canary_percent,
            image=SERVE_IMAGE,
            deploy_mode=deploy_mode,
            cluster=DEPLOY_CLUSTER,
        )
        _task(dep, "1", "2G", "4G", cache=False)
    with dsl.If(lambda_search == True, name="lambda-search"):  # noqa: E712 (a KFP condition, not Python's)
        # §3.4's grid search on a validation split inside each training fold: one task per λ, then the table
        with dsl.ParallelFor(lambda_grid, parallelism=4) as lam:
            tl = tune_lambda(
                views=views,
                index=index,
                features=feats.outputs["features"],
                lam=lam,
                model_config=model_config,
                train_config=train_config,
                tune_config=tune_overrides,
            )
            tl = _gpu(_task(tl, "4", "16G", "24G"))
        trep = tune_report(
            points=dsl.Collected(tl.outputs["points"]), tune_config=tune_overrides, lambda_grid=lambda_grid
        )
        _task(trep, "1", "4G", "8G", s3=False)
    with dsl.If(ablations == True, name="ablations"):  # noqa: E712 (a KFP condition, not Python's)
        # §4.4: every variant on the run's folds, then the run's row of Fig. 4 beside the paper's values
        abl = ablations_task(views=views, index=index, model_config=model_config, train_config=train_config)
        abl = _gpu(_task(abl, "4", "16G", "24G"))
        _task(fig4(ablation_table=abl.outputs["ablation_table"]), "1", "4G", "8G", s3=False)


@dsl.pipeline(
    name="facet-vlm",
    description="FACET-VLM 3D/4D facial expression recognition: render, "
    "subject-independent K-fold training, evaluation, registry and KServe deployment.",
)
def facet_vlm_pipeline(
    data_uri: str = "s3://facet-data/bu3dfe",
    dataset: str = "bu3dfe",
    protocol: str = "bu3dfe-II",
    n_folds: int = DATA.n_folds,
    seed: int = 0,
    shard_size: int = DATA.shard_size,
    preset: str = "paper",
    pretrained: str = "",
    checkpoint: str = "",
    allow_random_weights: bool = False,
    epochs: int = -1,
    lam: float = -1.0,
    render_size: int = -1,
    render_mode: str = "",
    frames: int = -1,
    temporal: str = "",
    model_overrides: dict = {},
    train_overrides: dict = {},
    render_overrides: dict = {},
    cross_data_uri: str = "",
    cross_dataset_name: str = datasets.CROSS_DATASET,
    cross_protocol: str = datasets.CROSS_PROTOCOL,
    cross_label_map: dict = datasets.cross_label_map(),
    registry_uri: str = "s3://facet-models/registry",
    model_name: str = "facet-vlm",
    deploy_target: str = "none",
    deploy_namespace: str = "kubeflow-user",
    canary_percent: int = 0,
    deploy_mode: str = DEPLOY.mode,
    weights_uri: str = WEIGHTS.store,
    init_from: str = "",
    prompts_file: str = "",
    lambda_search: bool = False,
    lambda_grid: list = list(TuneConfig().grid),
    tune_overrides: dict = {},
    ablations: bool = False,
):
    """FACET-VLM 3D/4D facial expression recognition: render, subject-independent K-fold training,
    evaluation, registry and KServe deployment.

    Args:
        data_uri: The dataset in its native layout: an s3:// prefix (or, for local runs, a folder).
        dataset: Dataset reader: bu3dfe, bosphorus, bu4dfe, bp4d, 4dme or manifest.
        protocol: Evaluation protocol selecting samples and labels, e.g. bu3dfe-I, bu3dfe-II, bosphorus, bu4dfe.
        n_folds: Number of subject-independent cross-validation folds (one train-fold task each).
        seed: Seed of the subject-to-fold assignment.
        shard_size: Samples per render shard (render tasks run over groups of shards).
        preset: Named settings to start from: paper (ViT-B-16, the paper's optimiser), recommended or tiny-cpu.
        pretrained: open_clip pretrained tag of the backbone, e.g. openai; empty = the preset's.
        checkpoint: Backbone weights file (s3:// or a path in the image); empty = the preset's.
        allow_random_weights: Let the paper/recommended presets run on random backbone weights (smoke tests only).
        epochs: Training epochs per fold; -1 = the preset's.
        lam: Lambda of the multiview consistency loss (0 = none); -1 = the preset's.
        render_size: Rendered view side in pixels; -1 = the RenderConfig default.
        render_mode: Rendering: shaded, depth, normal or texture; empty = the RenderConfig default.
        frames: Frames sampled per 4D sequence; -1 = the RenderConfig default.
        temporal: How a 4D sequence becomes one image per view: rankpool, mean or apex; empty = the default.
        model_overrides: Any other model setting over the preset, nested as in ModelConfig,
            e.g. {"head": {"cvsa": false}}.
        train_overrides: Any other training setting over the preset (TrainConfig),
            e.g. {"lr": 0.0001, "device": "cuda"}.
        render_overrides: Any other render setting (RenderConfig),
            e.g. {"yaws": [0, -45, 45], "projection": "perspective"}.
        cross_data_uri: Optional second dataset for a cross-dataset test (train on data_uri, test here);
            empty = skip.
        cross_dataset_name: Reader of the cross-dataset data, e.g. bp4d.
        cross_protocol: Protocol of the cross-dataset data, e.g. bp4d-cross.
        cross_label_map: Target label → source label for the cross-dataset test.
        registry_uri: s3:// root of the model registry the best fold is registered in.
        model_name: Registered model name (also the InferenceService name).
        deploy_target: none, or kserve (create/update an InferenceService); local is for kfp.local runs only.
        deploy_namespace: Kubernetes namespace of the InferenceService.
        canary_percent: Share of traffic for the new version during rollout (0 = all at once; Knative mode only).
        deploy_mode: KServe deployment mode: Standard (raw Deployment) or Knative; RawDeployment/Serverless
            on KServe < 0.16.
        weights_uri: s3:// prefix where a pretrained tag's weights are stored once, under their SHA-256.
        init_from: Start training from a bundle (fine-tuning, as the paper does for 4DME): a registry ref
            s3://…/registry/NAME@ALIAS or …/NAME/vNNNN, or a bundle path in the image; empty = from the backbone.
        prompts_file: Labels/prompts YAML (s3:// or a path in the image) replacing the packaged prompts;
            empty = the packaged ones.
        lambda_search: Run the paper's lambda grid search (section 3.4) beside the CV; off by default (the paper
            then fixes lambda = 0.1).
        lambda_grid: Lambda values of the search, one task each.
        tune_overrides: Other search settings (TuneConfig), e.g. {"val_frac": 0.25, "metric": "macro_f1"}.
        ablations: Also run every ablation variant of section 4.4 on the folds and draw the run's row of Fig. 4
            beside the paper's values (HTML/Markdown); off by default.
    """
    fp = _task(fingerprint(data_uri=data_uri), "1", "1G", "2G", cache=False)
    cfg = configure(
        preset=preset,
        model_overrides=model_overrides,
        train_overrides=train_overrides,
        render_overrides=render_overrides,
        deploy_target=deploy_target,
        dataset=dataset,
        protocol=protocol,
        allow_random_weights=allow_random_weights,
        pretrained=pretrained,
        checkpoint=checkpoint,
        epochs=epochs,
        lam=lam,
        render_size=render_size,
        render_mode=render_mode,
        frames=frames,
        temporal=temporal,
        init_from=init_from,
        prompts_file=prompts_file,
    )
    cfg = _task(cfg, "1", "1G", "2G", s3=False)
    # a pretrained tag → its S3 copy (downloaded once); every GPU step and the bundle then use checkpoint=s3://…
    wts = _task(fetch_weights(model_config=cfg.outputs["model_config"], store=weights_uri), "1", "4G", "8G")
    ing = ingest(
        data_uri=data_uri,
        data_fingerprint=fp.outputs["fingerprint"],
        dataset=dataset,
        protocol=protocol,
        n_folds=n_folds,
        seed=seed,
        shard_size=shard_size,
        render_tasks=DATA.render_tasks,
    )
    ing = _task(ing, "2", "8G", "12G")
    render_train_register(
        index=ing.outputs["index"],
        shard_groups=ing.outputs["shard_groups"],
        fold_ids=ing.outputs["fold_ids"],
        data_uri=data_uri,
        data_fingerprint=fp.outputs["fingerprint"],
        seed=seed,
        model_config=wts.outputs["model_config"],
        train_config=cfg.outputs["train_config"],
        render_config=cfg.outputs["render_config"],
        cross_data_uri=cross_data_uri,
        cross_dataset_name=cross_dataset_name,
        cross_protocol=cross_protocol,
        cross_label_map=cross_label_map,
        registry_uri=registry_uri,
        model_name=model_name,
        deploy_target=deploy_target,
        deploy_namespace=deploy_namespace,
        canary_percent=canary_percent,
        deploy_mode=deploy_mode,
        lambda_search=lambda_search,
        lambda_grid=lambda_grid,
        tune_overrides=tune_overrides,
        ablations=ablations,
    )
