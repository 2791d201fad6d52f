#!/usr/bin/env python3
"""Times upstream Keylime's IMA verification on a measurement list and runtime policy.

Run with the Python of a virtualenv holding upstream Keylime (scripts/upstream-keylime.sh).
Per round it does what upstream's pull verifier does for one attestation whose quote covers
the whole list (first attestation, from entry 0):

  * deserialize the stored runtime policy (``ima.deserialize_runtime_policy``, every
    attestation in ``cloud_verifier_tornado``), set the tenant keyring from its
    ``verification-keys`` (``cloud_verifier_common.process_quote_response``);
  * split the list on newlines and run ``ima.process_measurement_list`` with a fresh
    ``AgentAttestState``, the quoted PCR 10 and the quote's bank (``Tpm.__check_ima``).

Every round must pass (no failure event), so the figure is that of an accepted attestation.
Prints one JSON object: the median round, entries per second for the whole attestation and
for ``process_measurement_list`` alone.
"""

import argparse
import json
import logging
import statistics
import sys
import time


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", required=True, help="ASCII IMA measurement list")
    p.add_argument("--policy", required=True, help="runtime policy JSON (format v1)")
    p.add_argument("--expected", required=True, help="expected.json written by gen_ima")
    p.add_argument("--bank", default="sha256", choices=["sha1", "sha256"], help="quote bank")
    p.add_argument("--min-rounds", type=int, default=3)
    p.add_argument("--min-time", type=float, default=10.0, help="seconds, over all rounds")
    return p.parse_args()


def main() -> int:
    args = parse_args()

    # pylint: disable=import-outside-toplevel
    from keylime.agentstates import AgentAttestState
    from keylime.common.algorithms import Hash
    from keylime.ima import file_signatures, ima

    # A production verifier logs at INFO; nothing per entry is logged on an accepted list.
    logging.getLogger("keylime").setLevel(logging.INFO)

    with open(args.log, encoding="utf-8") as f:
        log_text = f.read()
    with open(args.policy, encoding="utf-8") as f:
        policy_text = f.read()
    with open(args.expected, encoding="utf-8") as f:
        expected = json.load(f)
    pcrval = expected["pcr10"][args.bank]
    hash_alg = Hash(args.bank)
    entries = sum(1 for line in log_text.split("\n") if line)

    def attestation() -> tuple:
        t0 = time.perf_counter()
        runtime_policy = ima.deserialize_runtime_policy(policy_text)
        state = AgentAttestState("keylime-bench")
        keyrings = state.get_ima_keyrings()
        keyrings.set_tenant_keyring(file_signatures.ImaKeyring.from_string(runtime_policy["verification-keys"]))
        lines = log_text.split("\n")
        t1 = time.perf_counter()
        _, failure = ima.process_measurement_list(
            state,
            lines,
            runtime_policy,
            pcrval=pcrval,
            ima_keyrings=keyrings,
            boot_aggregates=None,
            hash_alg=hash_alg,
        )
        t2 = time.perf_counter()
        if failure:
            raise SystemExit(f"upstream rejected the list: {failure.get_event_ids()[:5]}")
        if state.get_next_ima_ml_entry() != entries:
            raise SystemExit(f"upstream verified {state.get_next_ima_ml_entry()} of {entries} entries")
        return t2 - t0, t2 - t1

    attestation()  # warm-up, and the pass check before timing
    whole, process = [], []
    start = time.perf_counter()
    while len(whole) < args.min_rounds or time.perf_counter() - start < args.min_time:
        w, p = attestation()
        whole.append(w)
        process.append(p)

    median_whole = statistics.median_low(whole)
    median_process = statistics.median_low(process)
    print(
        json.dumps(
            {
                "implementation": "upstream keylime (Python)",
                "entries": entries,
                "policy_paths": expected["policy_paths"],
                "bank": args.bank,
                "rounds": len(whole),
                "attestation_s": median_whole,
                "entries_per_s": entries / median_whole,
                "process_measurement_list_s": median_process,
                "process_measurement_list_entries_per_s": entries / median_process,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
