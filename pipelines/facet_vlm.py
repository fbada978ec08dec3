"""The FACET-VLM Kubeflow pipeline: one definition, run locally (kfp.local) or compiled for a cluster.

ingest → render | rank-pool (ParallelFor over shard groups) → merge → extract-features →
train-fold (ParallelFor over folds) → evaluate (fan-in) → register (best fold, S3 registry)
[→ cross-dataset test when a target is given] [→ deploy to KServe when a target is given].
Needs a KFP backend ≥ 2.5 for `dsl.Collected` artifact fan-in in the open-source backend.
"""

from kfp import dsl, kubernetes

from components.cross_dataset import cross_dataset
from components.deploy import deploy
from components.evaluate import evaluate
from components.extract_features import extract_features
from components.ingest import ingest
from components.merge_views import merge_views
from components.rank_pool import rank_pool
from components.register import register
from components.render import render
from components.settings import ACCELERATOR, S3_SECRET
from components.train_fold import train_fold

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION": "AWS_DEFAULT_REGION",
}


def _s3(task: dsl.PipelineTask, cpu: str = "2", memory: str = "8G", retries: int = 2) -> dsl.PipelineTask:
    """S3 credentials from the Kubernetes secret, resource requests and retries on transient failures."""
    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=S3_ENV)
    task.set_cpu_request(cpu).set_memory_request(memory).set_retry(retries, backoff_duration="30s")
    return task


def _gpu(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """One GPU of the configured type (a compile-time setting, like the images) on GPU-tainted nodes."""
    task.set_accelerator_type(ACCELERATOR).set_accelerator_limit(1)
    kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    return task


@dsl.pipeline(name="render-train-register")
def render_train_register(
    index: dsl.Input[dsl.Dataset],
    shard_groups: list,
    fold_ids: list,
    data_uri: str,
    seed: int,
    render_mode: str,
    render_size: int,
    frames: int,
    temporal: str,
    model_config: dict,
    train_config: dict,
    cross_data_uri: str,
    cross_dataset_name: str,
    cross_protocol: str,
    cross_label_map: dict,
    registry_uri: str,
    model_name: str,
    deploy_target: str,
    deploy_namespace: str,
    canary_percent: int,
):
    """Everything after ingest, as a sub-pipeline whose loops run over its own inputs."""
    with dsl.ParallelFor(shard_groups, parallelism=4) as group:
        args = dict(
            index=index,
            data_uri=data_uri,
            shards=group,
            mode=render_mode,
            size=render_size,
            frames=frames,
            temporal=temporal,
        )
        r3 = _s3(render(**args))
        r4 = _s3(rank_pool(**args))
    views = _s3(
        merge_views(scans=dsl.Collected(r3.outputs["views"]), sequences=dsl.Collected(r4.outputs["views"]))
    ).outputs["views"]
    feats = _gpu(
        _s3(
            extract_features(views=views, index=index, model_config=model_config, train_config=train_config),
            memory="16G",
        )
    )
    with dsl.ParallelFor(fold_ids, parallelism=4) as fold:
        tr = _gpu(
            _s3(
                train_fold(
                    views=views,
                    index=index,
                    features=feats.outputs["features"],
                    fold=fold,
                    model_config=model_config,
                    train_config=train_config,
                ),
                memory="16G",
            )
        )
    ev = _s3(evaluate(fold_models=dsl.Collected(tr.outputs["fold_model"])))
    reg = _s3(
        register(
            views=views,
            index=index,
            fold_models=dsl.Collected(tr.outputs["fold_model"]),
            best_fold=ev.outputs["best_fold"],
            cv_table=ev.outputs["cv_table"],
            model_config=model_config,
            train_config=train_config,
            registry_uri=registry_uri,
            model_name=model_name,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        ),
        memory="16G",
    )
    with dsl.If(cross_data_uri != "", name="cross-dataset"):
        ting = _s3(
            ingest(
                data_uri=cross_data_uri,
                dataset=cross_dataset_name,
                protocol=cross_protocol,
                n_folds=2,
                seed=seed,
                shard_size=100000,
                parallel=1,
            )
        )
        tviews = _s3(
            rank_pool(
                index=ting.outputs["index"],
                data_uri=cross_data_uri,
                shards=[0],
                mode=render_mode,
                size=render_size,
                frames=frames,
                temporal=temporal,
            )
        )
        _gpu(
            _s3(
                cross_dataset(
                    source_views=views,
                    target_views=tviews.outputs["views"],
                    label_map=cross_label_map,
                    model_config=model_config,
                    train_config=train_config,
                ),
                memory="16G",
            )
        )
    with dsl.If(deploy_target != "none", name="deploy"):
        _s3(
            deploy(
                model_uri=reg.outputs["model_uri"],
                target=deploy_target,
                namespace=deploy_namespace,
                name=model_name,
                canary_percent=canary_percent,
            ),
            memory="2G",
        )


@dsl.pipeline(
    name="facet-vlm",
    description="FACET-VLM 3D/4D facial expression recognition: render, "
    "subject-independent K-fold training, evaluation, registry and KServe deployment.",
)
def facet_vlm_pipeline(
    data_uri: str = "s3://facet-data/bu3dfe",
    dataset: str = "bu3dfe",
    protocol: str = "bu3dfe-II",
    n_folds: int = 10,
    seed: int = 0,
    render_mode: str = "shaded",
    render_size: int = 224,
    frames: int = 16,
    temporal: str = "rankpool",
    shard_size: int = 64,
    model_config: dict = {
        "clip_model": "ViT-B-16",
        "pretrained": "",
        "checkpoint": "",
        "unfreeze_top": 2,
        "cvsa": True,
        "mtgf": True,
    },
    train_config: dict = {"epochs": 30, "freeze_epochs": 5, "lam": 0.1, "device": "auto"},
    cross_data_uri: str = "",
    cross_dataset_name: str = "bp4d",
    cross_protocol: str = "bp4d-cross",
    cross_label_map: dict = {"happy": "happy", "disgust": "disgust"},
    registry_uri: str = "s3://facet-models/registry",
    model_name: str = "facet-vlm",
    deploy_target: str = "none",
    deploy_namespace: str = "kubeflow-user",
    canary_percent: int = 0,
):
    ing = _s3(
        ingest(
            data_uri=data_uri,
            dataset=dataset,
            protocol=protocol,
            n_folds=n_folds,
            seed=seed,
            shard_size=shard_size,
            parallel=4,
        )
    )
    render_train_register(
        index=ing.outputs["index"],
        shard_groups=ing.outputs["shard_groups"],
        fold_ids=ing.outputs["fold_ids"],
        data_uri=data_uri,
        seed=seed,
        render_mode=render_mode,
        render_size=render_size,
        frames=frames,
        temporal=temporal,
        model_config=model_config,
        train_config=train_config,
        cross_data_uri=cross_data_uri,
        cross_dataset_name=cross_dataset_name,
        cross_protocol=cross_protocol,
        cross_label_map=cross_label_map,
        registry_uri=registry_uri,
        model_name=model_name,
        deploy_target=deploy_target,
        deploy_namespace=deploy_namespace,
        canary_percent=canary_percent,
    )
