#!/usr/bin/env python3
"""Times upstream Keylime's measured-boot path on UEFI event logs.

Run with the Python of a virtualenv holding upstream Keylime (scripts/upstream-keylime.sh);
upstream runs Debian's ``tpm2_eventlog`` (tpm2-tools) and loads libefivar1 for this path.
Per log and per round, as the pull verifier does for one quote (``Tpm.check_pcrs``):

  * parse+replay: ``mba.bootlog_parse`` on the base64 log the agent sends, bank sha256
    (``tpm2_eventlog`` parses and replays, upstream enriches the YAML and adds boot
    aggregates);
  * parse+replay+policy: the same followed by ``mba.bootlog_evaluate`` with the built-in
    ``example`` policy and a reference state made from the same log by upstream's
    ``keylime-policy create measured-boot`` code (``create_mb_refstate``), made once,
    outside the timing.

The policy figure is given only for logs whose own reference state the example policy
accepts (it rejects many real logs, e.g. for EV_POST_CODE events in PCR 0). Prints one JSON
object with the median round per log, in microseconds.
"""

import argparse
import base64
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

EXAMPLE_PCRS = set(range(0, 10)) | {14}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", nargs="+", help="binary UEFI event logs")
    p.add_argument("--bank", default="sha256", choices=["sha1", "sha256"])
    p.add_argument("--min-rounds", type=int, default=10)
    p.add_argument("--min-time", type=float, default=2.0, help="seconds per log and figure")
    return p.parse_args()


def median_us(work: Callable[[], None], min_rounds: int, min_time: float) -> Dict[str, Any]:
    work()  # warm-up
    rounds: List[float] = []
    start = time.perf_counter()
    while len(rounds) < min_rounds or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        work()
        rounds.append(time.perf_counter() - t)
    return {"us": statistics.median_low(rounds) * 1e6, "rounds": len(rounds)}


def main() -> int:
    args = parse_args()
    # The verifier's measured_boot_policy_name, through upstream's environment override.
    os.environ["KEYLIME_VERIFIER_MEASURED_BOOT_POLICY_NAME"] = "example"

    # pylint: disable=import-outside-toplevel
    from keylime.mba import mba
    from keylime.policy import create_mb_policy

    mba.load_imports(skip_custom_policies=True)
    # A production verifier logs at INFO; quiet the expected rejections while probing.
    logging.getLogger("keylime").setLevel(logging.CRITICAL)

    results = []
    for path in args.logs:
        with open(path, "rb") as f:
            log_b64 = base64.b64encode(f.read()).decode()
        entry: Dict[str, Any] = {"log": path, "parse_replay": None, "policy": None, "note": ""}

        pcrs, _, data, failure = mba.bootlog_parse(log_b64, args.bank)
        if failure or not pcrs:
            entry["note"] = f"upstream cannot parse: {failure.get_event_ids() if failure else 'no PCRs'}"
            results.append(entry)
            continue

        def parse() -> None:
            _, _, _, fail = mba.bootlog_parse(log_b64, args.bank)
            if fail:
                raise SystemExit(f"{path}: parse failed while timing")

        entry["parse_replay"] = median_us(parse, args.min_rounds, args.min_time)

        refstate: Optional[Dict[str, Any]] = None
        with tempfile.TemporaryDirectory() as tmp:
            ns = argparse.Namespace(
                eventlog_file=path, without_secureboot=True, output=os.path.join(tmp, "refstate.json")
            )
            refstate = create_mb_policy.create_mb_refstate(ns)
        if not refstate:
            entry["note"] = "upstream creates no reference state for this log"
            results.append(entry)
            continue
        refstate_str = json.dumps(refstate)
        verdict = mba.bootlog_evaluate(refstate_str, data, EXAMPLE_PCRS, "keylime-bench")
        if verdict:
            entry["note"] = f"example policy rejects the log's own reference state: {verdict.get_event_ids()}"
            results.append(entry)
            continue

        def parse_and_check() -> None:
            _, _, parsed, fail = mba.bootlog_parse(log_b64, args.bank)
            fail.merge(mba.bootlog_evaluate(refstate_str, parsed, EXAMPLE_PCRS, "keylime-bench"))
            if fail:
                raise SystemExit(f"{path}: policy rejected while timing")

        entry["policy"] = median_us(parse_and_check, args.min_rounds, args.min_time)
        results.append(entry)

    print(json.dumps({"implementation": "upstream keylime (Python)", "bank": args.bank, "logs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
