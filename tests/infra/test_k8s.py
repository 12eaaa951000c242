"""infra/k8s as `kubectl kustomize` builds it: the pieces infra/README.md lists, pinned images, and references
that resolve (ConfigMaps, Secrets, the shared volume). No cluster is needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.infra.conftest import INFRA, ROOT, SHARED_HOME, image_is_pinned, run_tool

K8S = INFRA / "k8s"
JOB_TEMPLATE = K8S / "gpu-job-template.json"
INSTALL = "install kubectl 1.27 or newer: it builds kustomizations"
AUTOLOOP_IMAGE = "ghcr.io/autoloop/autoloop"
HOME_CLAIM = "autoloop-home"

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def resources() -> list[Resource]:
    result = run_tool("kubectl", ["kustomize", str(K8S.relative_to(ROOT))], install=INSTALL)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {resource["metadata"]["name"]: resource for resource in resources if resource["kind"] == kind}


def pod_specs(resource: Resource) -> Iterator[dict[str, Any]]:
    """The pod templates of a workload (a RayCluster has one per group)."""
    if resource["kind"] in ("Deployment", "StatefulSet", "Job"):
        yield resource["spec"]["template"]["spec"]
    elif resource["kind"] == "RayCluster":
        yield resource["spec"]["headGroupSpec"]["template"]["spec"]
        for group in resource["spec"]["workerGroupSpecs"]:
            yield group["template"]["spec"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {variable["name"]: variable.get("value", variable.get("valueFrom")) for variable in container.get("env", [])}


def home_mounts(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """Where ``container`` mounts the autoloop-home claim."""
    claimed = {volume["name"] for volume in pod.get("volumes", [])
               if volume.get("persistentVolumeClaim", {}).get("claimName") == HOME_CLAIM}
    return [mount["mountPath"] for mount in container.get("volumeMounts", []) if mount["name"] in claimed]


def gpus(container: dict[str, Any]) -> tuple[Any, Any]:
    resources = container.get("resources", {})
    return resources.get("requests", {}).get("nvidia.com/gpu"), resources.get("limits", {}).get("nvidia.com/gpu")


def test_everything_is_in_the_namespace(resources: list[Resource]) -> None:
    assert list(of_kind(resources, "Namespace")) == ["autoloop"]
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == "autoloop", resource["metadata"]["name"]


def test_every_image_is_pinned(resources: list[Resource]) -> None:
    images = [container["image"] for resource in resources for pod in pod_specs(resource)
              for container in containers(pod)]
    assert images and all(image_is_pinned(image) for image in images), images
    assert f"{AUTOLOOP_IMAGE}:0.1.0" in images


def test_the_autoloop_image_can_be_repointed() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (entry,) = [image for image in kustomization["images"] if image["name"] == AUTOLOOP_IMAGE]
    assert entry["newTag"] == "0.1.0"
    # the pool's jobs run the same image (a ConfigMap's JSON is out of kustomize's reach)
    template = json.loads(JOB_TEMPLATE.read_text())
    assert template["variables"]["properties"]["image"]["default"] == f"{entry['newName']}:{entry['newTag']}"


def test_references_resolve(resources: list[Resource]) -> None:
    config_maps, secrets = of_kind(resources, "ConfigMap"), of_kind(resources, "Secret")
    claims = of_kind(resources, "PersistentVolumeClaim")
    for resource in resources:
        for pod in pod_specs(resource):
            for volume in pod.get("volumes", []):
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in config_maps, volume
                if "persistentVolumeClaim" in volume:
                    assert volume["persistentVolumeClaim"]["claimName"] in claims, volume
            for container in containers(pod):
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        assert source["configMapRef"]["name"] in config_maps, source
                    if "secretRef" in source:
                        assert source["secretRef"]["name"] in secrets, source
                for variable in container.get("env", []):
                    key = variable.get("valueFrom", {}).get("secretKeyRef")
                    if key:
                        assert key["key"] in secrets[key["name"]]["stringData"], key


def test_the_shared_folder_is_one_read_write_many_claim(resources: list[Resource]) -> None:
    claim = of_kind(resources, "PersistentVolumeClaim")[HOME_CLAIM]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    env = of_kind(resources, "ConfigMap")["autoloop-env"]["data"]
    assert env["AUTOLOOP_HOME"] == SHARED_HOME
    assert env["PREFECT_LOCAL_STORAGE_PATH"].startswith(SHARED_HOME + "/")
    # every pod that reads autoloop-env (bar the servers and the setup job) mounts the claim at AUTOLOOP_HOME
    without_home = {"mlflow", "autoloop-setup"}
    for resource in resources:
        for pod in pod_specs(resource):
            for container in pod["containers"]:
                names = {source.get("configMapRef", {}).get("name") for source in container.get("envFrom", [])}
                if "autoloop-env" in names and resource["metadata"]["name"] not in without_home:
                    assert home_mounts(pod, container) == [SHARED_HOME], resource["metadata"]["name"]


def test_compose_and_kubernetes_give_the_same_environment() -> None:
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    config_map = yaml.safe_load((K8S / "autoloop-env.yaml").read_text())
    assert compose["x-autoloop-env"] == config_map["data"]


def test_postgres_is_a_stateful_set_with_its_init_script(resources: list[Resource]) -> None:
    postgres = of_kind(resources, "StatefulSet")["postgres"]
    assert postgres["spec"]["serviceName"] in of_kind(resources, "Service")
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    (init,) = [volume for volume in next(pod_specs(postgres))["volumes"] if volume["name"] == "init"]
    script = of_kind(resources, "ConfigMap")[init["configMap"]["name"]]["data"]["init.sh"]
    assert script == (INFRA / "postgres" / "init.sh").read_text()


def test_the_servers_use_postgres(resources: list[Resource]) -> None:
    deployments = of_kind(resources, "Deployment")
    (mlflow,) = deployments["mlflow"]["spec"]["template"]["spec"]["containers"]
    assert any(arg.startswith("--backend-store-uri=postgresql+psycopg2://") for arg in mlflow["args"])
    assert "--serve-artifacts" in mlflow["args"]
    (prefect,) = deployments["prefect"]["spec"]["template"]["spec"]["containers"]
    assert env_of(prefect)["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://prefect:")
    assert set(of_kind(resources, "Service")) >= {"postgres", "mlflow", "prefect", "ray-head"}


def test_the_gpu_worker_may_run_jobs(resources: list[Resource]) -> None:
    worker = of_kind(resources, "Deployment")["prefect-worker-gpu"]["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    assert container["image"].startswith("prefecthq/prefect:") and container["image"].endswith("-kubernetes")
    assert container["command"][:7] == ["prefect", "worker", "start", "--pool", "autoloop-gpu", "--type",
                                        "kubernetes"]
    (binding,) = [binding for binding in of_kind(resources, "RoleBinding").values()
                  if {"kind": "ServiceAccount", "name": worker["serviceAccountName"], "namespace": "autoloop"}
                  in binding["subjects"]]
    rules = of_kind(resources, "Role")[binding["roleRef"]["name"]]["rules"]
    granted = {(resource, verb) for rule in rules for resource in rule["resources"] for verb in rule["verbs"]}
    assert {("jobs", "create"), ("jobs", "watch"), ("pods", "list"), ("pods/log", "get")} <= granted


def test_the_job_template_requests_gpus_and_mounts_the_shared_folder() -> None:
    template = json.loads(JOB_TEMPLATE.read_text())
    assert set(template) == {"job_configuration", "variables"}
    variables = template["variables"]["properties"]
    assert variables["gpus"]["type"] == "integer" and variables["gpus"]["default"] == 1
    manifest = template["job_configuration"]["job_manifest"]
    assert manifest["kind"] == "Job"
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert gpus(container) == ("{{ gpus }}", "{{ gpus }}")
    assert home_mounts(pod, container) == [SHARED_HOME]
    assert {"configMapRef": {"name": "autoloop-env"}} in container["envFrom"]
    # every placeholder names a variable of the pool
    placeholders = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", JOB_TEMPLATE.read_text()))
    assert placeholders <= set(variables), placeholders - set(variables)


def test_the_job_template_is_in_the_cluster(resources: list[Resource]) -> None:
    config_map = of_kind(resources, "ConfigMap")["gpu-job-template"]
    assert json.loads(config_map["data"]["gpu-job-template.json"]) == json.loads(JOB_TEMPLATE.read_text())
    (setup,) = of_kind(resources, "Job")["autoloop-setup"]["spec"]["template"]["spec"]["containers"]
    assert setup["command"] == ["sh", "infra/setup.sh"] and (INFRA / "setup.sh").is_file()
    assert env_of(setup)["AUTOLOOP_GPU_POOL_TYPE"] == "kubernetes"
    (mount,) = setup["volumeMounts"]
    assert env_of(setup)["AUTOLOOP_GPU_JOB_TEMPLATE"] == f"{mount['mountPath']}/gpu-job-template.json"


def test_multi_node_training_is_an_indexed_job(resources: list[Resource]) -> None:
    job = of_kind(resources, "Job")["autoloop-train"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["torchrun", "-m", "autoloop.training.ddp"]
    env = env_of(container)
    assert int(env["PET_NNODES"]) == spec["completions"]
    assert int(env["PET_NPROC_PER_NODE"]) == gpus(container)[1]
    assert env["PET_NODE_RANK"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']")
    # the rendezvous is pod 0, by its name under the headless Service the pods are a subdomain of
    service = of_kind(resources, "Service")[pod["subdomain"]]
    assert service["spec"]["clusterIP"] == "None"
    assert env["PET_RDZV_ENDPOINT"] == f"{job['metadata']['name']}-0.{pod['subdomain']}:29400"
    assert home_mounts(pod, container) == [SHARED_HOME]


def test_the_ray_cluster(resources: list[Resource]) -> None:
    (cluster,) = of_kind(resources, "RayCluster").values()
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["spec"]["rayVersion"] == "2.60.0"
    assert cluster["spec"]["workerGroupSpecs"]
    for pod in pod_specs(cluster):
        (container,) = pod["containers"]
        assert container["image"].startswith(AUTOLOOP_IMAGE + ":")
        assert home_mounts(pod, container) == [SHARED_HOME]
    selector = of_kind(resources, "Service")["ray-head"]["spec"]["selector"]
    assert selector == {"ray.io/cluster": cluster["metadata"]["name"], "ray.io/node-type": "head"}


def test_the_carla_server_has_a_gpu(resources: list[Resource]) -> None:
    deployment = of_kind(resources, "Deployment")["carla"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "carlasim/carla:0.9.16"
    assert "-RenderOffScreen" in container["command"] and "-carla-rpc-port=2000" in container["command"]
    assert gpus(container) == (1, 1)
    assert container["readinessProbe"]["tcpSocket"]["port"] in ("rpc", 2000)
    assert {port["containerPort"] for port in container["ports"]} == {2000, 2001, 2002}
    # the carla-server concurrency limit has a slot per server
    (setup,) = of_kind(resources, "Job")["autoloop-setup"]["spec"]["template"]["spec"]["containers"]
    assert int(env_of(setup)["AUTOLOOP_CARLA_SLOTS"]) == deployment["spec"]["replicas"]
