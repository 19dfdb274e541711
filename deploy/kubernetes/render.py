"""Render a kustomization of deploy/kubernetes without kubectl: the subset of kustomize it uses.

    python deploy/kubernetes/render.py deploy/kubernetes/overlays/gpu > gpu.yaml

Supported: ``resources`` (files and kustomization directories), ``patches`` (strategic-merge
patch files, matched by kind and name), ``configMapGenerator`` (``files``, ``behavior`` create or
replace) with ``generatorOptions.disableNameSuffixHash: true``. Anything else is an error rather
than silently ignored. The strategic merge knows the merge keys of the lists these manifests
patch (containers, env, volumes, ...); other lists are replaced, as kustomize does.
tests/deploy/test_kubernetes.py compares the output with ``kubectl kustomize`` where it can.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["merge", "render"]

_SUPPORTED = {"apiVersion", "kind", "resources", "patches", "configMapGenerator", "generatorOptions"}
# list field -> the key its items merge on (Kubernetes' patchMergeKey for these fields)
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
               "volumeMounts": "mountPath", "imagePullSecrets": "name"}


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":  # containerPort for container ports, port for Service ports
        return "containerPort" if any("containerPort" in i for i in items) else "port"
    return _MERGE_KEYS.get(field)


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """``patch`` strategically merged into ``base`` (neither is modified); a key set to null in
    the patch is deleted, as in kustomize (a TLS pod's gRPC probe becomes a TCP one)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(base[key], value, key) if key in base else value
        return out
    if isinstance(base, list) and isinstance(patch, list):
        key = _merge_key(field, base + patch)
        if key is None or not all(isinstance(i, dict) and key in i for i in base + patch):
            return list(patch)
        out_list = list(base)
        for item in patch:
            at = [n for n, old in enumerate(out_list) if old[key] == item[key]]
            if at:
                out_list[at[0]] = merge(out_list[at[0]], item)
            else:
                out_list.append(item)
        return out_list
    return patch


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _config_map(root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    if set(spec) - {"name", "files", "behavior"}:
        raise ValueError(f"{root}: configMapGenerator {spec['name']}: only name, files, behavior")
    data = {}
    for item in spec.get("files", []):
        key, _, file = item.rpartition("=") if "=" in item else (Path(item).name, "", item)
        data[key] = (root / file).read_text(encoding="utf-8")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": spec["name"]}, "data": data}


def render(directory: str | Path) -> list[dict[str, Any]]:
    """The documents a kustomization directory builds to (as ``kubectl kustomize`` does)."""
    root = Path(directory)
    kust = yaml.safe_load((root / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kust) - _SUPPORTED
    if unknown:
        raise ValueError(f"{root}/kustomization.yaml: render.py does not support {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in kust.get("resources", []):
        path = root / entry
        docs += render(path) if path.is_dir() else _load_all(path)
    generators = kust.get("configMapGenerator", [])
    if generators and not kust.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise ValueError(f"{root}: configMapGenerator needs generatorOptions.disableNameSuffixHash")
    for spec in generators:
        made = _config_map(root, spec)
        at = [n for n, d in enumerate(docs) if d["kind"] == "ConfigMap"
              and d["metadata"]["name"] == spec["name"]]
        behavior = spec.get("behavior", "create")
        if behavior == "create" and not at:
            docs.append(made)
        elif behavior == "replace" and at:
            docs[at[0]] = made
        else:
            raise ValueError(f"{root}: configMapGenerator {spec['name']}: behavior {behavior} "
                             f"with{'' if at else 'out'} an existing ConfigMap")
    for entry in kust.get("patches", []):
        if set(entry) != {"path"}:
            raise ValueError(f"{root}: only `patches: - path: FILE` is supported, not {entry}")
        for patch in _load_all(root / entry["path"]):
            at = [n for n, d in enumerate(docs) if d["kind"] == patch["kind"]
                  and d["metadata"]["name"] == patch["metadata"]["name"]]
            if len(at) != 1:
                raise ValueError(f"{root / entry['path']}: no single {patch['kind']} "
                                 f"{patch['metadata']['name']} to patch")
            docs[at[0]] = merge(docs[at[0]], patch)
    return docs


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: render.py KUSTOMIZATION_DIR")
    yaml.safe_dump_all(render(sys.argv[1]), sys.stdout, sort_keys=False)
