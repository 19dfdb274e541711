"""deploy/kubernetes renders (without a cluster), validates against the Kubernetes schemas of a
pinned version, and agrees with the server, the trainer, the Dockerfile and docker-compose.yml."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from augsvc.cli import build_parser
from augsvc.service.config import ServeConfig, env_name
from augsvc.service.config import load_config as load_serve_config
from augsvc.service.server import SERVICE_NAME
from training.config import load_config as load_train_config

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30"  # the oldest release the manifests promise to work on
TARGETS = ["base", "overlays/cpu", "overlays/gpu", "overlays/tls"]

_spec = importlib.util.spec_from_file_location("augsvc_k8s_render", KUBE / "render.py")
assert _spec is not None and _spec.loader is not None
render_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_module)
render = render_module.render

Doc = dict[str, Any]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind}/{name}"
    return found[0]


def container(docs: list[Doc], kind: str, name: str) -> Doc:
    containers = find(docs, kind, name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def quantity(text: str | int) -> float:
    """A Kubernetes quantity as a number: "3" -> 3, "500m" -> 0.5, "2Gi" -> 2 * 2**30."""
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?", str(text))
    assert match, text
    scale = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[match[2]]
    return float(match[1]) * scale


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def config_file(docs: list[Doc], kind: str, name: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """The config file a workload's container reads (written out from its ConfigMap), and its
    command line."""
    pod = find(docs, kind, name)["spec"]["template"]["spec"]
    main = container(docs, kind, name)
    argv = [*main.get("command", []), *main.get("args", [])]
    path = Path(argv[argv.index("--config") + 1])
    mount = [m for m in main["volumeMounts"] if m["mountPath"] == str(path.parent)]
    assert len(mount) == 1, f"nothing mounted at {path.parent}"
    volume = next(v for v in pod["volumes"] if v["name"] == mount[0]["name"])
    data = find(docs, "ConfigMap", volume["configMap"]["name"])["data"]
    out = tmp_path / f"{name}-{path.name}"
    out.write_text(data[path.name], encoding="utf-8")
    return out, argv


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def docs(target: str) -> list[Doc]:
    return render(KUBE / target)


@pytest.fixture(scope="module")
def compose() -> Doc:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_renders_every_part(docs: list[Doc]) -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == [("ConfigMap", "augsvc-serve"), ("ConfigMap", "augsvc-train"),
                     ("Deployment", "augsvc"), ("HorizontalPodAutoscaler", "augsvc"),
                     ("Job", "augsvc-train"), ("NetworkPolicy", "augsvc"),
                     ("PodDisruptionBudget", "augsvc"), ("Service", "augsvc"),
                     ("Service", "augsvc-train")]


def _normalized(value: Any) -> Any:
    """Lists of objects in a canonical order: kustomize may reorder merged lists (env)."""
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalized(v) for v in value]
        if all(isinstance(v, dict) for v in items):
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return items
    return value


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_render_matches_kubectl_kustomize(target: str, docs: list[Doc]) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(KUBE / target)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    theirs = {(d["kind"], d["metadata"]["name"]): _normalized(d)
              for d in yaml.safe_load_all(out) if d}
    ours = {(d["kind"], d["metadata"]["name"]): _normalized(d) for d in docs}
    assert ours == theirs


def test_every_document_validates(docs: list[Doc]) -> None:
    example = yaml.safe_load((KUBE / "base" / "token-secret.example.yaml").read_text(encoding="utf-8"))
    for doc in [*docs, example]:
        # raises ValidationError (bad or unknown field) or SchemaNotFoundError (unknown kind)
        version = kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert version == KUBERNETES_VERSION


def test_validation_catches_a_bad_field(docs: list[Doc]) -> None:
    bad = json.loads(json.dumps(find(docs, "Deployment", "augsvc")))
    probe = bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe.get("grpc", probe.get("tcpSocket"))["port"] = [50051]  # a list where a port goes
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_server_config_and_command(docs: list[Doc], tmp_path: Path) -> None:
    path, argv = config_file(docs, "Deployment", "augsvc", tmp_path)
    config = load_serve_config(path=path)  # unknown keys and bad values raise ConfigError
    assert set(yaml.safe_load(path.read_text(encoding="utf-8"))) <= set(ServeConfig.__dataclass_fields__)
    assert config.host == "0.0.0.0"
    assert argv[0] == "augsvc"
    args = build_parser().parse_args(argv[1:])  # an unknown flag exits
    assert args.func.__name__ == "_cmd_serve"
    assert Path(args.config).name == "serve.yaml"  # config_file checked the mount and the key


def test_ports_agree(docs: list[Doc], tmp_path: Path) -> None:
    path, _ = config_file(docs, "Deployment", "augsvc", tmp_path)
    config = load_serve_config(path=path)
    deployment = find(docs, "Deployment", "augsvc")
    main = container(docs, "Deployment", "augsvc")
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"grpc": config.port, "metrics": config.metrics_port}
    tls = "AUGSVC_TLS_CERT" in {e["name"] for e in main.get("env", [])}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        # the kubelet's grpc probe speaks plaintext only: a TLS server is probed by TCP
        assert set(main[probe]) & {"grpc", "tcpSocket"} == ({"tcpSocket"} if tls else {"grpc"})
        assert main[probe]["tcpSocket" if tls else "grpc"]["port"] == config.port, probe
    if not tls:
        assert main["livenessProbe"]["grpc"].get("service", "") == ""
        assert main["readinessProbe"]["grpc"]["service"] == SERVICE_NAME == "augsvc.v1.Augmenter"
    else:
        mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in main["env"]}
        assert env["AUGSVC_TLS_CERT"].startswith(mounts["tls"] + "/")
        assert env["AUGSVC_TLS_KEY"].startswith(mounts["tls"] + "/")
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == "augsvc-tls"
    service = find(docs, "Service", "augsvc")
    by_name = {p["name"]: p for p in service["spec"]["ports"]}
    assert by_name["grpc"]["port"] == config.port
    assert by_name["metrics"]["port"] == config.metrics_port
    assert {p["targetPort"] for p in by_name.values()} <= set(ports)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == config.metrics_port
    assert config.processes == 1  # one metrics port per pod (process k serves metrics_port + k)


def test_images_match_compose(docs: list[Doc], target: str, compose: Doc) -> None:
    services = compose["services"]
    assert container(docs, "Deployment", "augsvc")["image"] == services["augsvc"]["image"]
    trainer = container(docs, "Job", "augsvc-train")["image"]
    expected = services["trainer-gpu" if target.endswith("gpu") else "trainer"]["image"]
    assert trainer == expected
    for init in find(docs, "Job", "augsvc-train")["spec"]["template"]["spec"]["initContainers"]:
        assert init["image"] == services["augsvc"]["image"]


def test_server_resources_shutdown_and_security(docs: list[Doc], tmp_path: Path) -> None:
    path, _ = config_file(docs, "Deployment", "augsvc", tmp_path)
    config = load_serve_config(path=path)
    pod = find(docs, "Deployment", "augsvc")["spec"]["template"]["spec"]
    main = container(docs, "Deployment", "augsvc")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in main["volumeMounts"]}
    shm = mounts["/dev/shm"]["emptyDir"]
    assert shm["medium"] == "Memory" and quantity(shm["sizeLimit"]) > 0
    assert "emptyDir" in mounts["/tmp"]
    # the rule of deployment.yaml's comment
    resources = main["resources"]
    assert quantity(resources["requests"]["cpu"]) == config.processes * (1 + config.epoch_workers)
    memory = config.processes * 2 * 2**30 + quantity(shm["sizeLimit"])
    assert quantity(resources["requests"]["memory"]) == memory
    assert quantity(resources["limits"]["memory"]) == memory
    assert pod["terminationGracePeriodSeconds"] > config.grace_period
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    token = [e for e in main["env"] if e["name"] == env_name("token")]
    assert len(token) == 1 and token[0]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_services_selectors_and_policies(docs: list[Doc]) -> None:
    for name in ("augsvc", "augsvc-train"):
        assert find(docs, "Service", name)["spec"]["clusterIP"] == "None"
    deployment = find(docs, "Deployment", "augsvc")
    server_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"]["matchLabels"], server_labels)
    assert matches(find(docs, "Service", "augsvc")["spec"]["selector"], server_labels)
    assert matches(find(docs, "PodDisruptionBudget", "augsvc")["spec"]["selector"]["matchLabels"],
                   server_labels)
    hpa = find(docs, "HorizontalPodAutoscaler", "augsvc")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "augsvc"}
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert "cpu" in container(docs, "Deployment", "augsvc")["resources"]["requests"]
    policy = find(docs, "NetworkPolicy", "augsvc")["spec"]
    assert matches(policy["podSelector"]["matchLabels"], server_labels)
    grpc_rule, metrics_rule = policy["ingress"]
    trainer_labels = find(docs, "Job", "augsvc-train")["spec"]["template"]["metadata"]["labels"]
    assert matches(grpc_rule["from"][0]["podSelector"]["matchLabels"], trainer_labels)
    assert not matches(grpc_rule["from"][0]["podSelector"]["matchLabels"], server_labels)
    grpc_port = find(docs, "Service", "augsvc")["spec"]["ports"][0]["port"]
    assert [p["port"] for p in grpc_rule["ports"]] == [grpc_port]
    assert "namespaceSelector" in metrics_rule["from"][0]
    assert [p["port"] for p in metrics_rule["ports"]] == [int(
        deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])]


def test_trainer_job(docs: list[Doc], target: str, tmp_path: Path) -> None:
    job = find(docs, "Job", "augsvc-train")
    pod = job["spec"]["template"]["spec"]
    path, argv = config_file(docs, "Job", "augsvc-train", tmp_path)
    assert argv[0] == "torchrun"
    from torch.distributed.run import get_args_parser

    run = get_args_parser().parse_args(argv[1:])
    nnodes = int(run.nnodes)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == nnodes > 1
    assert run.module and run.training_script == "training"
    assert run.rdzv_backend == "c10d" and int(run.nproc_per_node) == 1
    from training.cli import _parser as train_parser

    train_args = train_parser().parse_args(run.training_script_args)
    assert train_args.command == "train"
    assert Path(train_args.config).name == "train.yaml"  # config_file checked the mount and key
    # the rendezvous endpoint is pod 0 of this Job in the headless Service of its subdomain
    host, port = run.rdzv_endpoint.rsplit(":", 1)
    assert host == f"{job['metadata']['name']}-0.{pod['subdomain']}"
    rdzv = find(docs, "Service", pod["subdomain"])["spec"]
    assert rdzv["clusterIP"] == "None" and rdzv["publishNotReadyAddresses"] is True
    assert matches(rdzv["selector"], job["spec"]["template"]["metadata"]["labels"])
    assert int(port) in [p["port"] for p in rdzv["ports"]]
    assert f'"{host}", {port}' in pod["initContainers"][0]["command"][-1]
    # train.yaml streams from the service's DNS name and port
    config = load_train_config(path)
    serve_path, _ = config_file(docs, "Deployment", "augsvc", tmp_path)
    assert config.data.source == "remote"
    assert config.data.addresses == [f"augsvc:{load_serve_config(path=serve_path).port}"]
    resources = container(docs, "Job", "augsvc-train")["resources"]
    if target.endswith("gpu"):
        assert config.device == "cuda"
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 1
        base = load_train_config(KUBE / "base" / "train.yaml")
        assert config == dataclasses.replace(base, device="cuda")
    else:
        assert config.device == "cpu"
        assert "nvidia.com/gpu" not in {**resources["requests"], **resources.get("limits", {})}


def test_renderer_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n", encoding="utf-8")
    with pytest.raises(ValueError, match="namePrefix"):
        render(tmp_path)


def test_strategic_merge() -> None:
    base = {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}], "args": ["p", "q"]},
                           {"name": "b"}]}
    patch = {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}], "args": ["r"]}]}
    assert render_module.merge(base, patch) == {"containers": [
        {"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}], "args": ["r"]},
        {"name": "b"}]}
