#!/usr/bin/env bash
# The quick-start demo. On a fresh Debian machine it installs what is missing, builds the
# project, and then, all on loopback in a temporary directory:
#   1. starts software TPMs (swtpm) provisioned with EK certificates from their own local CA,
#   2. starts the verifier and the registrar (they generate their CA and mTLS certificates),
#   3. starts an agent: it registers its EK, EK certificate and AK and proves with
#      TPM2_ActivateCredential that the AK lives in the same TPM as the EK,
#   4. shows an impostor (another TPM claiming the same agent id) refused by the registrar,
#   5. enrols the agent with the tenant: a PCR policy, a runtime (IMA) policy made by
#      keylime-policy from the agent's own measurement list, and an encrypted payload,
#   6. shows the agent attested again and again, and the payload's autorun.sh run once,
#   7. tampers: runs a file the runtime policy does not know (measured into the IMA list
#      and PCR 10, as the kernel's IMA would),
#   8. shows the verifier catching it, naming the file, and the agent running its
#      revocation action.
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
export NO_COLOR=1

free_port() { # a port that is free, with the next one free too (swtpm's control port)
  local p
  while :; do
    p=$(( (RANDOM % 20000) + 30000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null && continue
    echo "$p"; return
  done
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.3
  done
}

# --- software TPMs with EK certificates ------------------------------------------------------
start_swtpm() { # start_swtpm NAME -> sets TPM_PORT
  local name=$1 dir="$WORK/$1"
  mkdir -p "$dir/state" "$dir/localca"
  cat > "$dir/swtpm-localca.conf" <<CONF
statedir = $dir/localca
signingkey = $dir/localca/signkey.pem
issuercert = $dir/localca/issuercert.pem
certserial = $dir/localca/certserial
CONF
  printf -- '--platform-manufacturer Keylime-Demo\n--platform-version 2.1\n--platform-model SoftwareTPM\n' \
    > "$dir/swtpm-localca.options"
  cat > "$dir/swtpm_setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $dir/swtpm-localca.conf
create_certs_tool_options = $dir/swtpm-localca.options
CONF
  swtpm_setup --tpm2 --tpmstate "$dir/state" --config "$dir/swtpm_setup.conf" \
    --create-ek-cert --create-platform-cert --pcr-banks sha1,sha256 --overwrite >"$dir/setup.log" 2>&1 \
    || { cat "$dir/setup.log"; fail "swtpm_setup could not provision the software TPM"; }
  TPM_PORT=$(free_port); local ctrl=$((TPM_PORT + 1))
  swtpm socket --tpm2 --tpmstate dir="$dir/state" --server type=tcp,port="$TPM_PORT" \
    --ctrl type=tcp,port="$ctrl" --flags not-need-init,startup-clear >"$dir/swtpm.log" 2>&1 &
  PIDS+=($!)
  wait_for 10 "swtpm on port $TPM_PORT" bash -c "exec 3<>/dev/tcp/127.0.0.1/$TPM_PORT"
  mkdir -p "$WORK/tpm_cert_store"
  cp "$dir/localca/issuercert.pem" "$WORK/tpm_cert_store/$name-issuer.pem"
  cp "$dir/localca/swtpm-localca-rootca-cert.pem" "$WORK/tpm_cert_store/$name-root.pem"
}

say "Step 1: starting software TPMs (swtpm), each with an EK certificate from its own local CA"
start_swtpm tpm1; TPM1_PORT=$TPM_PORT
start_swtpm tpm2; TPM2_PORT=$TPM_PORT
info "the agent's TPM listens on 127.0.0.1:$TPM1_PORT; a second one (127.0.0.1:$TPM2_PORT) plays an impostor"
info "their CAs go into the tpm_cert_store that the registrar and tenant trust for EK certificates"

# --- verifier and registrar ------------------------------------------------------------------
say "Step 2: starting the verifier and the registrar (upstream-format config files; mTLS certificates generated on first start)"
VER_PORT=$(free_port); REG_PORT=$(free_port); REG_TLS_PORT=$(free_port)
STATE="$WORK/keylime"; mkdir -p "$STATE"
cat > "$WORK/verifier.conf" <<CONF
[verifier]
ip = 127.0.0.1
port = $VER_PORT
tls_dir = generate
database_url = sqlite
quote_interval = 1
retry_interval = 1
max_retries = 3
registrar_ip = 127.0.0.1
registrar_port = $REG_TLS_PORT

[revocations]
enabled_revocation_notifications = ['agent']
CONF
cat > "$WORK/registrar.conf" <<CONF
[registrar]
ip = 127.0.0.1
port = $REG_PORT
tls_port = $REG_TLS_PORT
tls_dir = default
database_url = sqlite
CONF
cat > "$WORK/tenant.conf" <<CONF
[tenant]
verifier_ip = 127.0.0.1
verifier_port = $VER_PORT
registrar_ip = 127.0.0.1
registrar_port = $REG_TLS_PORT
tls_dir = default
tpm_cert_store = $WORK/tpm_cert_store
require_ek_cert = True
CONF
export KEYLIME_DIR="$STATE" KEYLIME_VERIFIER_CONFIG="$WORK/verifier.conf" \
  KEYLIME_REGISTRAR_CONFIG="$WORK/registrar.conf" KEYLIME_TENANT_CONFIG="$WORK/tenant.conf" \
  KEYLIME_CA_CONFIG=/dev/null
"$BIN/keylime_verifier" >"$WORK/verifier.log" 2>&1 &
PIDS+=($!)
CA="$STATE/cv_ca"
wait_for 60 "the verifier" curl -sf --cacert "$CA/cacert.crt" "https://127.0.0.1:$VER_PORT/version"
"$BIN/keylime_registrar" >"$WORK/registrar.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the registrar" curl -sf "http://127.0.0.1:$REG_PORT/version"
info "verifier:  https://127.0.0.1:$VER_PORT (mTLS); its CA, server and client certificates are in $CA"
info "registrar: http://127.0.0.1:$REG_PORT (agents) and https://127.0.0.1:$REG_TLS_PORT (admin, mTLS)"
tenant() { "$BIN/keylime_tenant" "$@"; }

# --- agent -------------------------------------------------------------------------------------
AGENT_ID=d432fbb3-d2f1-4a97-9ef7-75bd81c00000
write_agent_conf() { # write_agent_conf NAME PORT
  mkdir -p "$WORK/$1/actions"
  cat > "$WORK/$1/keylime-agent.conf" <<CONF
[agent]
uuid = "$AGENT_ID"
ip = "127.0.0.1"
port = $2
contact_ip = "127.0.0.1"
contact_port = $2
registrar_ip = "127.0.0.1"
registrar_port = $REG_PORT
keylime_dir = "$WORK/$1"
trusted_client_ca = "$CA/cacert.crt"
revocation_actions_dir = "$WORK/$1/actions"
tpm_hash_alg = "sha256"
tpm_encryption_alg = "rsa"
tpm_signing_alg = "rsassa"
ima_ml_path = "$WORK/$1/ascii_runtime_measurements"
CONF
}
# IMA for a software TPM: files are hashed into the agent's measurement list and extended
# into PCR 10, as the kernel's IMA does on a real machine.
measure() { # measure AGENT_NAME FILE...
  local name=$1; shift
  "$BIN/keylime_ima_emulator" --tcti "swtpm:host=127.0.0.1,port=$TPM1_PORT" \
    --list "$WORK/$name/ascii_runtime_measurements" "$@"
}

say "Step 3: starting the agent: EK from the TPM, a new AK, registration, TPM2_ActivateCredential"
AGENT_PORT=$(free_port)
write_agent_conf agent "$AGENT_PORT"
measure agent /usr/bin/bash /usr/bin/ls /usr/bin/cat /usr/bin/env "$BIN/keylime_agent" | sed 's/^/    ima| /'
info "the boot so far: a boot_aggregate and five programs measured into the IMA list and PCR 10"
cat > "$WORK/agent/actions/record_revocation" <<SCRIPT
#!/bin/sh
# A revocation action: a real one would cut the machine off (drop keys, firewall it).
echo "revocation action ran with message:" > "$WORK/revoked.txt"
cat "\$1" >> "$WORK/revoked.txt"
SCRIPT
chmod +x "$WORK/agent/actions/record_revocation"
KEYLIME_AGENT_CONFIG="$WORK/agent/keylime-agent.conf" TCTI="swtpm:host=127.0.0.1,port=$TPM1_PORT" \
  "$BIN/keylime_agent" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!; PIDS+=($AGENT_PID)
wait_for 60 "the agent to register" tenant -c regstatus -u "$AGENT_ID" --json
wait_for 30 "the agent's pull API" bash -c "exec 3<>/dev/tcp/127.0.0.1/$AGENT_PORT"
{ grep -E "EK|AK|registered|activated|serving" "$WORK/agent.log" || true; } | cut -c 29- | sed 's/^/    agent| /' | tail -n 8
info "the registrar holds the agent's EK, EK certificate (checked against tpm_cert_store) and AK, activated"

# --- impostor ----------------------------------------------------------------------------------
say "Step 4: an impostor (the second software TPM) claims the same agent id"
write_agent_conf impostor "$(free_port)"
if KEYLIME_AGENT_CONFIG="$WORK/impostor/keylime-agent.conf" TCTI="swtpm:host=127.0.0.1,port=$TPM2_PORT" \
   "$BIN/keylime_agent" --register-only >"$WORK/impostor.log" 2>&1; then
  fail "the registrar accepted a different TPM for an existing agent id"
fi
{ grep -E "refused|403" "$WORK/impostor.log" || true; } | grep -v '^ ' | tail -n 1 | cut -c 1-200 | sed 's/^/    impostor| /'
info "refused: an agent id stays bound to the TPM that first registered it"

# --- enrol -------------------------------------------------------------------------------------
say "Step 5: enrolling the agent: PCR 15 must stay zero, a runtime policy, an encrypted payload"
mkdir -p "$WORK/payload"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=RevocationNotifier" \
  -keyout "$WORK/payload/RevocationNotifier-private.pem" -out "$WORK/payload/RevocationNotifier-cert.crt" 2>/dev/null
cat > "$WORK/payload/autorun.sh" <<SCRIPT
#!/bin/sh
echo "payload delivered and autorun.sh ran at \$(date -u +%H:%M:%S)" >> "$WORK/autorun.txt"
SCRIPT
chmod +x "$WORK/payload/autorun.sh"
echo record_revocation > "$WORK/payload/action_list"
ZEROS=$(printf '0%.0s' $(seq 1 64))
"$BIN/keylime-policy" create runtime --ima-measurement-list "$WORK/agent/ascii_runtime_measurements" \
  -o "$WORK/runtime-policy.json"
info "keylime-policy made a runtime policy from the agent's measurement list: $(python3 -c "import json; print(len(json.load(open('$WORK/runtime-policy.json'))['digests']))") paths"
tenant -c add -u "$AGENT_ID" --tpm_policy "{\"15\": [\"$ZEROS\"]}" --runtime-policy "$WORK/runtime-policy.json" \
  --cert "$WORK/payload" --verify \
  > "$WORK/tenant-add.txt" 2>&1 || { cat "$WORK/tenant-add.txt"; fail "tenant add failed"; }
sed 's/^/    tenant| /' "$WORK/tenant-add.txt" | tail -n 6
info "the tenant checked an identity quote, sent U; the verifier sends V after the first good quote;"
info "the agent derived the key K = U xor V, decrypted the payload and ran its autorun.sh"

# --- attested ----------------------------------------------------------------------------------
say "Step 6: the verifier attests the agent every second"
status_field() { tenant -c cvstatus -u "$AGENT_ID" --json | python3 -c "import json,sys; d=json.load(sys.stdin)['results']['$AGENT_ID']; print(d['$1'])"; }
attested_3() { [ "$(status_field operational_state)" = "Get Quote" ] && [ "$(status_field attestation_count)" -ge 3 ]; }
wait_for 60 "three successful attestations" attested_3
info "state: $(status_field operational_state), attestations so far: $(status_field attestation_count), status: $(status_field attestation_status)"
wait_for 20 "the payload's autorun.sh" test -s "$WORK/autorun.txt"
sed 's/^/    payload| /' "$WORK/autorun.txt"

# --- tamper ------------------------------------------------------------------------------------
say "Step 7: tampering: a program the runtime policy does not know runs on the machine"
cat > "$WORK/backdoor.sh" <<'SCRIPT'
#!/bin/sh
echo "not what this machine should run"
SCRIPT
measure agent "$WORK/backdoor.sh" | sed 's/^/    ima| /'
info "IMA measured it: a new entry in the list, PCR 10 extended"

say "Step 8: the verifier catches it on the next quote and revokes the agent"
invalid() { [ "$(status_field operational_state)" = "Invalid Quote" ]; }
wait_for 30 "the verifier to detect the tampering" invalid
info "state: $(status_field operational_state), status: $(status_field attestation_status), failure: $(status_field last_event_id)"
{ grep -o 'File not found in allowlist[^"]*' "$WORK/verifier.log" || true; } | head -n 1 | sed 's/^/    verifier| /'
wait_for 30 "the agent's revocation action" test -s "$WORK/revoked.txt"
head -c 600 "$WORK/revoked.txt" | sed 's/^/    agent action| /'; echo
info "the signed revocation notice reached the agent, which verified it and ran its action"

say "Demo complete: registered, attested, tampered with, caught and revoked."
