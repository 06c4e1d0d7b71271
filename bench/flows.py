"""Benchmark: a flow against the built-in robot it restates, on the same pages.

    python bench/flows.py [--refunds 300] [--seed 11] [--rounds 1] [--latency-ms 0]

The refunds robot and ``scenarios/demo-shop/flows/refunds-as-flow.toml`` (the same policy as
fields, CEL rules and the approve action) each decide every refund of a fresh copy of one
seeded shop, in a process of its own, with the same pages side by side (robots.toml's
``auto``). The harness is ``bench/refunds.py``'s: a figure counts only once the shop's audit
log shows exactly the ground truth's approvals, each once. Printed: decisions per minute,
CPU per decision (Chromium's included) and the flow / robot ratio, measured in the same run;
and what a guard costs (the same flow with ``guard = ["version", "status"]`` on its actions:
each action's page opened again right before the press).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import refunds  # noqa: E402

FLOW = BENCH.parent / "scenarios" / "demo-shop" / "flows" / "refunds-as-flow.toml"
ROBOT = "robot, auto pages"
AS_FLOW = "flow refunds-as-flow, auto pages"
GUARDED = "flow + guard, auto pages"  # each action's page opened again before its press


def flow_run(url: str, scenario_file: Path, work: Path, *, guard: bool = False) -> int:
    """The refunds policy as a flow on the shop at ``url`` (``scenario_file``, the robot's,
    is not read: the flow carries its own policy). Its decisions: acted and handed over."""
    import json

    from robots.flow.robot import FlowRobot
    from robots.flow.scenario import load

    ws = refunds.bench_workspace(work, "auto")
    flow_file = work / FLOW.name
    text = FLOW.read_text(encoding="utf-8")  # as the robot's, the day's total lifted
    text = text.replace("daily_cap = 20000", "daily_cap = 100000000")
    if guard:
        text = text.replace("\nlanded = ", '\nguard = ["version", "status"]\nlanded = ')
    flow_file.write_text(text, "utf-8")
    result = FlowRobot(ws, load(flow_file, base_url=url), flow_file).perform()
    if result.counts.get("system_exception"):
        raise RuntimeError(f"{result.counts['system_exception']} system exceptions")
    print(json.dumps({"counts": result.counts}), file=sys.stderr)
    return result.counts.get("acted", 0) + result.counts.get("handed_to_person", 0)


def lookup(name: str) -> refunds.Variant:
    if name == GUARDED:
        return lambda url, scenario, work: flow_run(url, scenario, work, guard=True)
    return flow_run if name == AS_FLOW else refunds.variant(name)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        refunds.child(sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]), lookup)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--refunds", type=int, default=300)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--latency-ms", type=float, default=0)
    args = ap.parse_args()
    with refunds.Bench(args.refunds, args.seed) as bench:
        bench.script = __file__
        figs = bench.rounds([ROBOT, AS_FLOW, GUARDED], args.rounds, latency_ms=args.latency_ms)
        refunds.Bench.ratios(figs, [(AS_FLOW, ROBOT), (GUARDED, ROBOT)])
        robot, flow = figs[ROBOT], figs[AS_FLOW]
        print(
            f"  CPU a decision: flow {flow.cpu_s / flow.decided:.3f} s, robot "
            f"{robot.cpu_s / robot.decided:.3f} s "
            f"({flow.cpu_s / flow.decided / (robot.cpu_s / robot.decided):.2f}x)"
        )
        print(
            "  the flow decides at least as fast as the robot"
            if flow.per_min >= robot.per_min
            else "  the flow decides SLOWER than the robot"
        )


if __name__ == "__main__":
    main()
