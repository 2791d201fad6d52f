#!/usr/bin/env python3
"""Prints our figures beside upstream Keylime's and their ratio.

``compare.py ima OURS.json UPSTREAM.json`` (entries per second, higher is better) and
``compare.py mb OURS.json UPSTREAM.json`` (microseconds per log, lower is better); each file
holds the one JSON object a benchmark driver printed. Standard library only.
"""

import json
import math
import os
import sys
from typing import Any, Dict, List, Optional


def load(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ratio(a: float, b: float) -> str:
    return f"{a / b:,.1f}x" if b > 0 else "n/a"


def ima(ours: Dict[str, Any], theirs: Dict[str, Any]) -> None:
    print(
        f"IMA: {ours['entries']:,} ima-ng entries, {ours['policy_paths']:,}-path runtime policy, "
        f"PCR 10 in the {ours['bank']} bank; one attestation covering the whole list, one core"
    )
    rows = [
        ("ours (keylime_ima::check, policy prepared once)", ours["entries_per_s"], ours["attestation_s"]),
        (
            "upstream 7.14.3 (policy load + process_measurement_list)",
            theirs["entries_per_s"],
            theirs["attestation_s"],
        ),
        (
            "upstream 7.14.3 (process_measurement_list alone)",
            theirs["process_measurement_list_entries_per_s"],
            theirs["process_measurement_list_s"],
        ),
    ]
    for name, rate, secs in rows:
        print(f"  {name:<60} {rate:>14,.0f} entries/s  ({secs * 1e3:,.1f} ms per attestation)")
    print(f"  ratio ours / upstream (per attestation):        {ratio(ours['entries_per_s'], theirs['entries_per_s'])}")
    print(
        "  ratio ours / upstream (process_measurement_list): "
        f"{ratio(ours['entries_per_s'], theirs['process_measurement_list_entries_per_s'])}"
    )
    if "prepare_s" in ours:
        print(f"  ours, preparing the policy (once per policy version): {ours['prepare_s'] * 1e3:,.1f} ms")


def us(figure: Optional[Dict[str, Any]]) -> Optional[float]:
    return None if figure is None else float(figure["us"])


def fmt(v: Optional[float]) -> str:
    return f"{v:,.1f}" if v is not None else "-"


def geomean(values: List[float]) -> Optional[float]:
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def mb(ours: Dict[str, Any], theirs: Dict[str, Any]) -> None:
    print(
        f"Measured boot: µs per log, bank {ours['bank']}; parse+replay, then parse+replay+policy "
        "(example policy, reference state made from the log itself); one core"
    )
    up = {os.path.realpath(e["log"]): e for e in theirs["logs"]}
    header = f"  {'log':<66} {'ours p+r':>10} {'upstr p+r':>11} {'ratio':>8} {'ours +pol':>10} {'upstr +pol':>11} {'ratio':>8}"
    print(header)
    pr_ratios: List[float] = []
    pol_ratios: List[float] = []
    notes: List[str] = []
    for e in ours["logs"]:
        u = up.get(os.path.realpath(e["log"]), {})
        name = e["log"].split("testdata/")[-1]
        o_pr, u_pr = us(e.get("parse_replay")), us(u.get("parse_replay"))
        o_pol, u_pol = us(e.get("policy")), us(u.get("policy"))
        r_pr = u_pr / o_pr if o_pr and u_pr else None
        r_pol = u_pol / o_pol if o_pol and u_pol else None
        if r_pr:
            pr_ratios.append(r_pr)
        if r_pol:
            pol_ratios.append(r_pol)
        print(
            f"  {name:<66} {fmt(o_pr):>10} {fmt(u_pr):>11} {fmt(r_pr) + 'x' if r_pr else '-':>8} "
            f"{fmt(o_pol):>10} {fmt(u_pol):>11} {fmt(r_pol) + 'x' if r_pol else '-':>8}"
        )
        for side, note in (("ours", e.get("note")), ("upstream", u.get("note"))):
            if note:
                notes.append(f"    {name}: {side}: {note}")
    g_pr, g_pol = geomean(pr_ratios), geomean(pol_ratios)
    print(
        f"  ratio upstream / ours (geometric mean): parse+replay {fmt(g_pr)}x over {len(pr_ratios)} logs; "
        f"parse+replay+policy {fmt(g_pol)}x over {len(pol_ratios)} logs"
    )
    if notes:
        print("  notes:")
        print("\n".join(notes))


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in ("ima", "mb"):
        print(__doc__, file=sys.stderr)
        return 2
    ours, theirs = load(sys.argv[2]), load(sys.argv[3])
    (ima if sys.argv[1] == "ima" else mb)(ours, theirs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
