#!/usr/bin/env bash
# Deploy streamrec into a running LocalStack with cdklocal (settings profile `localstack`: Powertools and
# msgspec bundled into each asset by pip, since LocalStack's community image does not apply Lambda
# layers), then write localstack/endpoint.json, which `STREAMREC_TARGET=localstack pytest -m e2e` reads.
#
#   docker compose -f localstack/docker-compose.yml up -d --wait
#   bash localstack/deploy.sh     # = npm run localstack:deploy; make e2e-localstack also runs the e2e suite
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=localstack
STACK="Streamrec-${PROFILE}"
PY="${PY:-.venv/bin/python}"
CDKLOCAL=node_modules/.bin/cdklocal
OUTPUTS=.local/localstack-outputs.json

# Dummy credentials, whatever the shell holds: LocalStack accepts any (account 000000000000), and real
# ones have no business reaching a local container.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="${AWS_DEFAULT_REGION}"
# cdklocal 3.x (aws-cdk-local src/index.js, configureEnvironment) refuses AWS_ENDPOINT_URL without
# AWS_ENDPOINT_URL_S3, and drops every other AWS_* variable not named in AWS_ENVAR_ALLOWLIST (it would
# deploy to us-east-1 whatever the region, while endpoint.json names this one).
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://localhost:4566}"
export AWS_ENDPOINT_URL_S3="${AWS_ENDPOINT_URL_S3:-${AWS_ENDPOINT_URL}}"
export AWS_ENVAR_ALLOWLIST=AWS_REGION,AWS_DEFAULT_REGION
# Path-style asset uploads (<endpoint>/<bucket>/<key>), so no DNS name per bucket is needed (CDK CLI
# >= 2.1138 reads this; it also does so by itself for localhost endpoints).
export CDK_S3_FORCE_PATH_STYLE=1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

if ! curl -fsS --max-time 5 "${AWS_ENDPOINT_URL}/_localstack/health" >/dev/null; then
  cat >&2 <<EOF
LocalStack is not reachable at ${AWS_ENDPOINT_URL}. Start it (needs Docker) with:
  docker compose -f localstack/docker-compose.yml up -d --wait
The pinned image runs without an account; newer ones need LOCALSTACK_AUTH_TOKEN (see localstack/README.md).
EOF
  exit 1
fi
[ -x "$PY" ] || { echo "No virtual environment: run 'make venv' first." >&2; exit 1; }
# The CDK CLI and cdklocal pinned in package-lock.json, installed again when the lock file changed.
if [ ! -x "$CDKLOCAL" ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

mkdir -p .local
"$CDKLOCAL" bootstrap -c "env=${PROFILE}"
"$CDKLOCAL" deploy "${STACK}" -c "env=${PROFILE}" --require-approval never --outputs-file "${OUTPUTS}"

"$PY" localstack/endpoint.py --stack "${STACK}" --outputs-file "${OUTPUTS}" \
  --aws-endpoint "${AWS_ENDPOINT_URL}" --region "${AWS_REGION}" --out localstack/endpoint.json
echo "LocalStack endpoint written to localstack/endpoint.json"
