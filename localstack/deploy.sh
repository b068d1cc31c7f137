#!/usr/bin/env bash
# Deploy streamrec into a running LocalStack with cdklocal (profile `localstack`: Powertools bundled into
# the assets with pip, since LocalStack's community image does not apply Lambda layers), then write
# localstack/endpoint.json, which `STREAMREC_TARGET=localstack pytest -m e2e` reads.
#
#   docker compose -f localstack/docker-compose.yml up -d
#   bash localstack/deploy.sh          # or: make e2e-localstack (deploys, then runs the e2e suite)
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://localhost:4566}"
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
PROFILE="${STREAMREC_PROFILE:-localstack}"
STACK="Streamrec-${PROFILE}"
PY="${PY:-.venv/bin/python}"
OUTPUTS=".local/localstack-outputs.json"

if ! curl -fsS "${AWS_ENDPOINT_URL}/_localstack/health" >/dev/null; then
  echo "LocalStack is not reachable at ${AWS_ENDPOINT_URL}." >&2
  echo "Start it with: docker compose -f localstack/docker-compose.yml up -d" >&2
  exit 1
fi
[ -x "$PY" ] || { echo "No virtual environment: run 'make venv' first." >&2; exit 1; }
# The CDK CLI and cdklocal, pinned in package-lock.json.
[ -x node_modules/.bin/cdklocal ] || npm ci --no-audit --no-fund

mkdir -p .local
npx cdklocal bootstrap -c "env=${PROFILE}"
npx cdklocal deploy "${STACK}" -c "env=${PROFILE}" --require-approval never --outputs-file "${OUTPUTS}"

"$PY" localstack/endpoint.py --stack "${STACK}" --outputs-file "${OUTPUTS}" \
  --aws-endpoint "${AWS_ENDPOINT_URL}" --region "${AWS_DEFAULT_REGION}" --out localstack/endpoint.json
echo "LocalStack endpoint written to localstack/endpoint.json"
