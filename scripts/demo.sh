#!/usr/bin/env bash
# The quick-start demo. On a fresh Debian machine it installs what is missing, builds the
# project, and then, all on loopback in a temporary directory:
#   1. starts a software TPM (swtpm) provisioned with an EK certificate from its own local CA,
#   2. starts the registrar (it generates its CA and mTLS certificates on first start),
#   3. starts an agent, which registers its EK, EK certificate and AK and proves with
#      TPM2_ActivateCredential that the AK lives in the same TPM as the EK,
#   4. reads the agent back from the registrar's admin API over mTLS,
#   5. tampers: a second machine (another software TPM) claims the same agent id, and the
#      registrar refuses it.
# Everything it started is stopped when it exits. KEEP=1 keeps the working directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say()  { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
fail() { printf '\n\033[31mDEMO FAILED: %s\033[0m\n' "$*" >&2; exit 1; }

./scripts/install-deps.sh
say "Building (cargo build --bins; the first build takes a few minutes)"
cargo build --workspace --bins --quiet
BIN="$ROOT/target/debug"

WORK=$(mktemp -d /tmp/keylime-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "working directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$(( (RANDOM % 20000) + 30000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

# --- 1. software TPM with an EK certificate --------------------------------------------
start_swtpm() { # start_swtpm NAME -> sets TPM_PORT
  local name=$1 dir="$WORK/$1"
  mkdir -p "$dir/state" "$dir/localca"
  cat > "$dir/swtpm-localca.conf" <<CONF
statedir = $dir/localca
signingkey = $dir/localca/signkey.pem
issuercert = $dir/localca/issuercert.pem
certserial = $dir/localca/certserial
CONF
  cat > "$dir/swtpm-localca.options" <<CONF
--platform-manufacturer Keylime-Demo
--platform-version 2.1
--platform-model SoftwareTPM
CONF
  cat > "$dir/swtpm_setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $dir/swtpm-localca.conf
create_certs_tool_options = $dir/swtpm-localca.options
CONF
  swtpm_setup --tpm2 --tpmstate "$dir/state" --config "$dir/swtpm_setup.conf" \
    --create-ek-cert --create-platform-cert --pcr-banks sha1,sha256 --overwrite >"$dir/setup.log" 2>&1 \
    || { cat "$dir/setup.log"; fail "swtpm_setup could not provision the software TPM"; }
  TPM_PORT=$(free_port); local ctrl; ctrl=$(free_port)
  swtpm socket --tpm2 --tpmstate dir="$dir/state" --server type=tcp,port="$TPM_PORT" \
    --ctrl type=tcp,port="$ctrl" --flags not-need-init,startup-clear >"$dir/swtpm.log" 2>&1 &
  PIDS+=($!)
  wait_for 10 "swtpm on port $TPM_PORT" bash -c "exec 3<>/dev/tcp/127.0.0.1/$TPM_PORT"
}

say "Step 1: starting a software TPM (swtpm) with an EK certificate from its own local CA"
start_swtpm tpm1
TPM1_PORT=$TPM_PORT
mkdir -p "$WORK/tpm_cert_store"
cp "$WORK/tpm1/localca/issuercert.pem" "$WORK/tpm_cert_store/swtpm-localca-issuer.pem"
[ -f "$WORK/tpm1/localca/swtpm-localca-rootca-cert.pem" ] && \
  cp "$WORK/tpm1/localca/swtpm-localca-rootca-cert.pem" "$WORK/tpm_cert_store/swtpm-localca-root.pem"
start_swtpm tpm2
TPM2_PORT=$TPM_PORT
cp "$WORK/tpm2/localca/issuercert.pem" "$WORK/tpm_cert_store/swtpm-localca-issuer-2.pem"
info "swtpm listening on 127.0.0.1:$TPM1_PORT; its EK certificate's CA is the registrar's trusted vendor CA"
info "(a second software TPM on 127.0.0.1:$TPM2_PORT plays another machine in step 5)"

# --- 2. registrar -------------------------------------------------------------------------
say "Step 2: starting the registrar (upstream-format registrar.conf; CA and mTLS certificates generated on first start)"
REG_PORT=$(free_port); REG_TLS_PORT=$(free_port)
mkdir -p "$WORK/registrar"
cat > "$WORK/registrar.conf" <<CONF
[registrar]
ip = 127.0.0.1
port = $REG_PORT
tls_port = $REG_TLS_PORT
tls_dir = generate
server_key = default
server_cert = default
trusted_client_ca = default
database_url = sqlite
CONF
cat > "$WORK/tenant.conf" <<CONF
[tenant]
tpm_cert_store = $WORK/tpm_cert_store
require_ek_cert = True
CONF
NO_COLOR=1 KEYLIME_DIR="$WORK/registrar" KEYLIME_REGISTRAR_CONFIG="$WORK/registrar.conf" \
KEYLIME_TENANT_CONFIG="$WORK/tenant.conf" KEYLIME_CA_CONFIG=/dev/null \
  "$BIN/keylime_registrar" >"$WORK/registrar.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the registrar" curl -sf "http://127.0.0.1:$REG_PORT/version"
info "registrar: http://127.0.0.1:$REG_PORT (agents) and https://127.0.0.1:$REG_TLS_PORT (admin, mTLS)"
info "version: $(curl -s "http://127.0.0.1:$REG_PORT/version")"
CA="$WORK/registrar/reg_ca"

# --- 3. agent -------------------------------------------------------------------------------
AGENT_ID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
start_agent() { # start_agent NAME TPM_PORT
  local name=$1 port=$2
  mkdir -p "$WORK/$name"
  cat > "$WORK/$name/keylime-agent.conf" <<CONF
[agent]
uuid = "$AGENT_ID"
ip = "127.0.0.1"
contact_ip = "127.0.0.1"
registrar_ip = "127.0.0.1"
registrar_port = $REG_PORT
keylime_dir = "$WORK/$name"
tpm_hash_alg = "sha256"
tpm_encryption_alg = "rsa"
tpm_signing_alg = "rsassa"
CONF
  NO_COLOR=1 KEYLIME_AGENT_CONFIG="$WORK/$name/keylime-agent.conf" TCTI="swtpm:host=127.0.0.1,port=$port" \
    "$BIN/keylime_agent" --register-only >"$WORK/$name.log" 2>&1
}

say "Step 3: starting the agent: EK from the TPM, a new AK, registration, ActivateCredential"
start_agent agent1 "$TPM1_PORT" || { cat "$WORK/agent1.log"; fail "the agent could not register"; }
{ grep -E "registered|activated|EK|AK" "$WORK/agent1.log" || true; } | sed 's/^/    agent| /' | tail -n 8

# --- 4. read it back over mTLS ----------------------------------------------------------------
say "Step 4: asking the registrar's admin API (mTLS with the generated client certificate)"
SHOW=$(curl -s --cacert "$CA/cacert.crt" --cert "$CA/client-cert.crt" --key "$CA/client-private.pem" \
  "https://127.0.0.1:$REG_TLS_PORT/v2.6/agents/$AGENT_ID")
echo "$SHOW" | grep -q '"code": *200' || fail "registrar did not list the agent as active: $SHOW"
info "GET /v2.6/agents/$AGENT_ID -> 200: the agent is registered and ACTIVE"
info "$(echo "$SHOW" | grep -o '"regcount": *[0-9]*')"
NOCERT=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA/cacert.crt" \
  "https://127.0.0.1:$REG_TLS_PORT/v2.6/agents/")
info "the same admin API without a client certificate -> HTTP $NOCERT (refused)"

# --- 5. tamper ---------------------------------------------------------------------------------
say "Step 5: tampering: another machine (a second software TPM) claims the same agent id"
if start_agent agent2 "$TPM2_PORT"; then
  fail "the registrar accepted a different TPM for an existing agent id"
fi
{ grep -iE "forbidden|403|identity" "$WORK/agent2.log" || true; } | grep -v '^ ' | sed 's/^/    impostor| /' | tail -n 2
AFTER=$(curl -s --cacert "$CA/cacert.crt" --cert "$CA/client-cert.crt" --key "$CA/client-private.pem" \
  "https://127.0.0.1:$REG_TLS_PORT/v2.6/agents/$AGENT_ID")
[ "$AFTER" = "$SHOW" ] || fail "the stored identity changed after the impostor's attempt"
info "refused with 403; the registrar's record of the genuine agent is unchanged"

say "Demo complete: registration and EK-AK binding shown, impostor refused."
