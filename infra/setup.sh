#!/bin/sh
# One-time Prefect setup, safe to run again: the two work pools, the global concurrency limits, the deployments
# of prefect.yaml. Runs from the repository root (/opt/autoloop in the image) against $PREFECT_API_URL;
# compose runs it as the `setup` service, Kubernetes as the autoloop-setup Job.
#   AUTOLOOP_GPU_POOL_TYPE  process (compose, default) or kubernetes (the pool's jobs are Kubernetes Jobs)
#   AUTOLOOP_GPU_JOB_TEMPLATE  base job template of a kubernetes pool (default infra/k8s/gpu-job-template.json)
#   AUTOLOOP_GPU_SLOTS, AUTOLOOP_CARLA_SLOTS  GPUs of the training pool, CARLA servers (default 1 each)
set -eu

prefect work-pool create autoloop-cpu --type process --overwrite
if [ "${AUTOLOOP_GPU_POOL_TYPE:-process}" = kubernetes ]; then
    prefect work-pool create autoloop-gpu --type kubernetes --overwrite \
        --base-job-template "${AUTOLOOP_GPU_JOB_TEMPLATE:-infra/k8s/gpu-job-template.json}"
else
    prefect work-pool create autoloop-gpu --type process --overwrite
fi

# a limit that exists already takes the new slot count
limit() {
    if prefect gcl inspect "$1" >/dev/null 2>&1; then
        prefect gcl update "$1" --limit "$2"
    else
        prefect gcl create "$1" --limit "$2"
    fi
}
limit gpu "${AUTOLOOP_GPU_SLOTS:-1}"
limit carla-server "${AUTOLOOP_CARLA_SLOTS:-1}"
limit autoloop-registry 1  # one MLflow alias move at a time

prefect --no-prompt deploy --all
