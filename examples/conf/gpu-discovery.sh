#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript / spark.worker.resource.gpu.discoveryScript):
# prints the GPUs of this node as Spark's ResourceInformation JSON, e.g. {"name": "gpu", "addresses": ["0","1"]}.
# Uses nvidia-smi; GPTQ4J_GPU_ADDRESSES="0,1" overrides it (containers without nvidia-smi, tests with fake GPUs).
set -euo pipefail
if [[ -n "${GPTQ4J_GPU_ADDRESSES:-}" ]]; then
  addrs="$GPTQ4J_GPU_ADDRESSES"
elif command -v nvidia-smi >/dev/null 2>&1; then
  addrs=$(nvidia-smi --query-gpu=index --format=csv,noheader | tr -d ' ' | paste -sd, -)
else
  echo "gpu-discovery.sh: no nvidia-smi on $(hostname) and GPTQ4J_GPU_ADDRESSES unset" >&2
  addrs=""
fi
json=$(echo "$addrs" | tr ',' '\n' | sed '/^$/d; s/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [$json]}"
