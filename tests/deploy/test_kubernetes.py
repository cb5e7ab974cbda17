"""The Kubernetes manifests, the Argo CD Applications and the GitLab pipeline, checked offline.

No API server runs here (docs/adr/0031-kubernetes.md): each overlay is built with
`kubectl kustomize`, validated with `kubernetes-validate -k 1.31 --strict` (the built-in
kinds) and against the project's JSON Schemas (the CloudNativePG resources), linted with
yamllint, then read for what an operator or a security officer relies on. Without kubectl the
tests skip, except in CI where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hypervision.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = ("dev", "recette", "prod")
KUBERNETES_VERSION = "1.31"
CNPG_GROUP = "postgresql.cnpg.io/"
CNPG_SCHEMAS = {
    "Cluster": KUBERNETES / "schemas" / "cnpg-cluster.json",
    "ScheduledBackup": KUBERNETES / "schemas" / "cnpg-scheduledbackup.json",
}
APP_IMAGE = "registry.example.gouv.fr/hypervision/hypervision"
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")
OWNER_SECRET = "hypervision-db-owner"
APP_SECRET = "hypervision-db-app"

Doc = dict[str, Any]


def _missing(what: str, how: str) -> None:
    """Skip when a tool is missing on a developer's machine; fail in CI, where it must run."""
    message = f"{what} is not available: {how}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        _missing("kubectl (with its built-in kustomize)", "the manifests cannot be built")
    assert path is not None
    return path


def _python_tool(module: str) -> list[str]:
    if importlib.util.find_spec(module) is None:
        _missing(f"the Python package of {module}", "run `make install` (a dev dependency)")
    return [sys.executable, "-m", module]


@cache
def _build(overlay: str) -> str:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _docs(overlay: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(_build(overlay)) if doc]


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_spec(doc: Doc) -> Doc:
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def _pod_labels(doc: Doc) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
    return dict(doc["spec"]["template"]["metadata"]["labels"])


def _workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in WORKLOADS]


def _containers(spec: Doc) -> Iterator[Doc]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def _secret_refs(spec: Doc) -> set[str]:
    """Every Secret a pod spec reads: env, envFrom, volumes, pull secrets."""
    names: set[str] = set()
    for container in _containers(spec):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
    names.update(s["name"] for s in spec.get("imagePullSecrets", []))
    return names


def _env(container: Doc) -> dict[str, Doc]:
    return {env["name"]: env for env in container.get("env", [])}


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions with In) against a pod's labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


# --- The schemas: Kubernetes 1.31 for the built-in kinds, ours for CloudNativePG ------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_kubernetes_schemas(overlay: str) -> None:
    docs = _docs(overlay)
    builtin = [d for d in docs if not d["apiVersion"].startswith(CNPG_GROUP)]
    result = subprocess.run(
        [*_python_tool("kubernetes_validate"), "-k", KUBERNETES_VERSION, "--strict", "-"],
        input=yaml.safe_dump_all(builtin),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every resource was checked against a schema (none skipped as an unknown kind).
    assert "Couldn't find schema" not in output, output
    assert output.count("INFO - passed") == len(builtin), output


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cloudnativepg_resources_match_the_project_schema(overlay: str) -> None:
    cnpg = [d for d in _docs(overlay) if d["apiVersion"].startswith(CNPG_GROUP)]
    kinds = sorted(d["kind"] for d in cnpg)
    assert kinds == (["Cluster", "ScheduledBackup"] if overlay == "prod" else ["Cluster"])
    for doc in cnpg:
        schema = json.loads(CNPG_SCHEMAS[doc["kind"]].read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == [], f"{doc['kind']}/{doc['metadata']['name']}: {errors}"


def test_cloudnativepg_schema_refuses_unknown_fields_and_wrong_types() -> None:
    cluster = _one(_docs("prod"), "Cluster", "hypervision-db")
    schema = json.loads(CNPG_SCHEMAS["Cluster"].read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(cluster)
    typo = json.loads(json.dumps(cluster))
    typo["spec"]["instance"] = typo["spec"].pop("instances")
    assert not validator.is_valid(typo)
    wrong = json.loads(json.dumps(cluster))
    wrong["spec"]["managed"]["roles"][0]["bypassrls"] = "no"
    assert not validator.is_valid(wrong)
    deep = json.loads(json.dumps(cluster))
    deep["spec"]["backup"]["barmanObjectStore"]["s3Credentials"]["accessKeyId"]["value"] = "x"
    assert not validator.is_valid(deep)


def test_yamllint_passes_over_deploy() -> None:
    result = subprocess.run(
        [*_python_tool("yamllint"), "-c", str(DEPLOY / ".yamllint"), "--strict", str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- What an operator or a security officer relies on --------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down(overlay: str) -> None:
    workloads = _workloads(_docs(overlay))
    assert {w["kind"] for w in workloads} == set(WORKLOADS)
    for workload in workloads:
        spec = _pod_spec(workload)
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp and tmp[0]["emptyDir"]["medium"] == "Memory", where
        for container in _containers(spec):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == 10001, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert "privileged" not in context, where
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts["tmp"] == "/tmp", where  # noqa: S108 - the pod's own memory-backed /tmp
            assert container["resources"]["requests"]["memory"], where
            assert container["resources"]["limits"]["memory"], where
    namespace = next(d for d in _docs(overlay) if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_inlined(overlay: str) -> None:
    docs = _docs(overlay)
    for secret in (d for d in docs if d["kind"] == "Secret"):
        assert not secret.get("data") and not secret.get("stringData"), secret["metadata"]
    sensitive = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|_URL$")
    for workload in _workloads(docs):
        for container in _containers(_pod_spec(workload)):
            env = _env(container)
            for name, item in env.items():
                if "value" not in item or not sensitive.search(name):
                    continue
                # A literal value is allowed only for a URL whose credentials are references
                # to variables that come from Secrets.
                assert name.endswith("_URL"), f"{name} is a literal in {workload['kind']}"
                for ref in re.findall(r"\$\((\w+)\)", item["value"]):
                    assert "secretKeyRef" in env[ref]["valueFrom"], (name, ref)
                assert re.fullmatch(
                    r"[a-z+]+://(\$\(\w+\)(:\$\(\w+\))?@)?[\w.-]+(:\d+)?(/\w*)?", item["value"]
                ), (name, item["value"])
    config = _one(docs, "ConfigMap", "hypervision-config")["data"]
    assert not [k for k in config if re.search(r"PASSWORD|SECRET_KEY|DATABASE", k)]


def test_secret_names_are_documented() -> None:
    """Every Secret the manifests read is listed for the operator who creates it."""
    docs = _docs("prod")
    names: set[str] = set()
    for workload in _workloads(docs):
        names |= _secret_refs(_pod_spec(workload))
    names.update(s["name"] for s in _one(docs, "ServiceAccount", "hypervision")["imagePullSecrets"])
    names.update(t["secretName"] for t in _one(docs, "Ingress", "hypervision")["spec"]["tls"])
    spec = _one(docs, "Cluster", "hypervision-db")["spec"]
    names.add(spec["bootstrap"]["initdb"]["secret"]["name"])
    names.update(r["passwordSecret"]["name"] for r in spec["managed"]["roles"])
    names.update(c["name"] for c in spec["backup"]["barmanObjectStore"]["s3Credentials"].values())
    assert names >= {OWNER_SECRET, APP_SECRET, "hypervision-app", "hypervision-audit-key"}
    listing = (KUBERNETES / "base" / "kustomization.yaml").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert re.search(rf"^#\s+{name}\s", listing, re.MULTILINE), name
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_migration_job_holds_the_owner_role(overlay: str) -> None:
    docs = _docs(overlay)
    job = _one(docs, "Job", "hypervision-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert int(annotations["argocd.argoproj.io/sync-wave"]) < 0
    container = _pod_spec(job)["containers"][0]
    assert container["command"] == ["hypervision", "migrate"]
    env = _env(container)
    owner_vars = re.findall(r"\$\((\w+)\)", env["HYPERVISION_DATABASE_OWNER_URL"]["value"])
    assert len(owner_vars) == 2
    for var in owner_vars:
        assert env[var]["valueFrom"]["secretKeyRef"]["name"] == OWNER_SECRET
    # The application role's name only, for migrate to grant it: not its password.
    assert "$(HV_DB_APP_USER)@" in env["HYPERVISION_DATABASE_URL"]["value"]
    for workload in _workloads(docs):
        if workload is job:
            continue
        spec = _pod_spec(workload)
        assert OWNER_SECRET not in _secret_refs(spec), workload["metadata"]["name"]
        for c in _containers(spec):
            assert "HYPERVISION_DATABASE_OWNER_URL" not in _env(c), workload["metadata"]["name"]
    web = _pod_spec(_one(docs, "Deployment", "hypervision"))["containers"][0]
    assert _env(web)["HV_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == APP_SECRET
    # The database side: the owner made by initdb, the application's role without privileges.
    cluster = _one(docs, "Cluster", "hypervision-db")["spec"]
    assert cluster["bootstrap"]["initdb"]["secret"]["name"] == OWNER_SECRET
    assert cluster["enableSuperuserAccess"] is False
    (role,) = cluster["managed"]["roles"]
    assert role["passwordSecret"]["name"] == APP_SECRET
    for privilege in ("superuser", "bypassrls", "createdb", "createrole", "replication"):
        assert role[privilege] is False, privilege


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_point_at_healthz_and_readyz(overlay: str) -> None:
    docs = _docs(overlay)
    deployment = _one(docs, "Deployment", "hypervision")
    spec = _pod_spec(deployment)
    (web,) = spec["containers"]
    assert web["command"] == ["hypervision", "serve"]
    ports = {p["name"]: p["containerPort"] for p in web["ports"]}
    config = _one(docs, "ConfigMap", "hypervision-config")["data"]
    assert ports["http"] == int(config["HYPERVISION_BIND_PORT"])
    assert config["HYPERVISION_BIND_HOST"] == "0.0.0.0"  # noqa: S104 - inside the pod
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    pause = web["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < pause < spec["terminationGracePeriodSeconds"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    service = _one(docs, "Service", "hypervision")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert _selects({"matchLabels": service["spec"]["selector"]}, _pod_labels(deployment))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default(overlay: str) -> None:
    docs = _docs(overlay)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = _one(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # Every workload of ours is let through by a policy of its own (else it would be cut off).
    allowing = [p["spec"] for p in policies if p["metadata"]["name"] != "default-deny"]
    for workload in _workloads(docs):
        labels = _pod_labels(workload)
        name = workload["metadata"]["name"]
        assert any(_selects(p["podSelector"], labels) for p in allowing), name
    web = _one(docs, "NetworkPolicy", "hypervision-web")["spec"]
    ingress, scrape = web["ingress"]  # the ingress controller, then Prometheus
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    assert scrape["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert [p["port"] for p in ingress["ports"] + scrape["ports"]] == [8000, 8000]
    egress = {
        json.dumps(rule["to"], sort_keys=True): sorted(p["port"] for p in rule["ports"])
        for rule in web["egress"]
    }
    db = [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "hypervision-db"}}}]
    nats = [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": "hypervision-nats",
                    "app.kubernetes.io/name": "nats",
                }
            }
        }
    ]
    dns = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert egress == {
        json.dumps(db, sort_keys=True): [5432],
        json.dumps(nats, sort_keys=True): [4222],
        json.dumps(dns, sort_keys=True): [53, 53],
    }


def test_prod_is_highly_available_and_backed_up() -> None:
    docs = _docs("prod")
    assert _one(docs, "Deployment", "hypervision")["spec"]["replicas"] >= 3
    hpa = _one(docs, "HorizontalPodAutoscaler", "hypervision")["spec"]
    assert hpa["minReplicas"] >= 3
    assert _one(docs, "PodDisruptionBudget", "hypervision")["spec"]["maxUnavailable"] == 1
    cluster = _one(docs, "Cluster", "hypervision-db")["spec"]
    assert cluster["instances"] == 3
    assert cluster["affinity"]["podAntiAffinityType"] == "required"
    store = cluster["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    backup = _one(docs, "ScheduledBackup", "hypervision-db-nightly")["spec"]
    assert backup["cluster"]["name"] == "hypervision-db"
    assert backup["method"] == "barmanObjectStore"
    assert _one(docs, "StatefulSet", "hypervision-nats")["spec"]["replicas"] == 3
    for overlay in ("dev", "recette"):
        assert "backup" not in _one(_docs(overlay), "Cluster", "hypervision-db")["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaling_on_cpu_and_open_streams(overlay: str) -> None:
    docs = _docs(overlay)
    hpa = _one(docs, "HorizontalPodAutoscaler", "hypervision")
    assert hpa["apiVersion"] == "autoscaling/v2"
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "hypervision_open_streams"
    replicas = _one(docs, "Deployment", "hypervision")["spec"]["replicas"]
    assert hpa["spec"]["minReplicas"] == replicas <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_keeps_the_live_stream_unbuffered(overlay: str) -> None:
    docs = _docs(overlay)
    annotations = _one(docs, "Ingress", "hypervision")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    heartbeat = Settings.model_fields["live_heartbeat_seconds"].default
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 10 * heartbeat
    host = _one(docs, "Ingress", "hypervision")["spec"]["rules"][0]["host"]
    config = _one(docs, "ConfigMap", "hypervision-config")["data"]
    assert config["HYPERVISION_PUBLIC_URL"] == f"https://{host}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_map_holds_valid_settings(overlay: str) -> None:
    """Every HYPERVISION_* key is a setting the application knows, with a valid value."""
    config = _one(_docs(overlay), "ConfigMap", "hypervision-config")["data"]
    known = set(Settings.model_fields)
    values: dict[str, Any] = {}
    for key, value in config.items():
        if not key.startswith("HYPERVISION_"):
            continue
        field = key.removeprefix("HYPERVISION_").lower()
        assert field in known, key
        values[field] = value
    settings = Settings(secret_key="k" * 32, **values)
    assert settings.live_bus == "nats"
    assert settings.cookie_secure is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_and_namespaces_per_overlay(overlay: str) -> None:
    docs = _docs(overlay)
    namespace = f"hypervision-{overlay}"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]
    tags: set[str] = set()
    for workload in _workloads(docs):
        for container in _containers(_pod_spec(workload)):
            name, _, tag = container["image"].rpartition(":")
            assert name and tag and tag != "latest", container["image"]
            if name == APP_IMAGE:
                tags.add(tag)
    (tag,) = tags  # the Deployment, the Job and the CronJob run the same release
    pattern = {
        "dev": r"[0-9a-f]{7,40}",  # the commit's short hash
        "recette": r"v\d+\.\d+\.\d+-rc\.\d+",
        "prod": r"v\d+\.\d+\.\d+",
    }
    assert re.fullmatch(pattern[overlay], tag), tag


# --- Argo CD and the GitLab pipeline: structure only, never run ----------------------------


def _yaml(path: Path) -> Doc:
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_argocd_application_points_at_its_overlay(overlay: str) -> None:
    app = _yaml(DEPLOY / "argocd" / f"{overlay}.yaml")
    project = _yaml(DEPLOY / "argocd" / "project.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert (project["apiVersion"], project["kind"]) == ("argoproj.io/v1alpha1", "AppProject")
    spec = app["spec"]
    assert spec["project"] == project["metadata"]["name"]
    source, destination = spec["source"], spec["destination"]
    assert source["repoURL"] in project["spec"]["sourceRepos"]
    assert source["path"] == f"deploy/kubernetes/overlays/{overlay}"
    assert (ROOT / source["path"] / "kustomization.yaml").is_file()
    kustomization = _yaml(ROOT / source["path"] / "kustomization.yaml")
    assert destination["namespace"] == kustomization["namespace"]
    assert {"server": destination["server"], "namespace": destination["namespace"]} in project[
        "spec"
    ]["destinations"]
    automated = "automated" in spec["syncPolicy"]
    assert automated is (overlay != "prod")  # production is synced by a person


def test_gitlab_pipeline_structure() -> None:
    path = DEPLOY / "gitlab-ci.yml"
    text = path.read_text(encoding="utf-8")
    assert "NOT RUN HERE" in text.split("\n\n")[0]
    pipeline = _yaml(path)
    stages = pipeline["stages"]
    expected = [
        "lint",
        "test",
        "build",
        "scan",
        "push",
        "deploy-dev",
        "deploy-recette",
        "deploy-prod",
    ]
    assert [s for s in stages if s in expected] == expected
    jobs = {k: v for k, v in pipeline.items() if isinstance(v, dict) and not k.startswith(".")}
    jobs = {k: v for k, v in jobs.items() if k not in ("variables", "default")}
    for name, job in jobs.items():
        assert job["stage"] in stages, name
        script = job.get("script") or pipeline[job["extends"]]["script"]
        assert isinstance(script, list) and script, name
    by_stage = {job["stage"] for job in jobs.values()}
    assert by_stage == set(stages)
    assert any("trivy image" in line for line in jobs["scan-image"]["script"])
    assert any("trivy fs" in line for line in jobs["scan-dependencies"]["script"])
    assert any("make test" in line for line in jobs["test"]["script"])
    prod = jobs["deploy-prod"]
    (rule,) = prod["rules"]
    assert rule["when"] == "manual" and "CI_COMMIT_TAG" in rule["if"]
    assert prod["variables"]["ENVIRONMENT"] == "prod"
    recette = jobs["deploy-recette"]
    assert "-rc" in recette["rules"][0]["if"]
