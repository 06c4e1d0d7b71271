"""Benchmark: the refunds robot's own variants, on fresh copies of one seeded shop.

    python bench/refunds.py [--refunds 600] [--seed 11] [--rounds 1] [--latency-ms 150]

One shop is seeded, then copied fresh for each variant and round, so every variant decides
the same refunds: plain HTTP (the ceiling), the robot with one page (on the headless shell
it takes, and on full Chromium for comparison), with its automatic choice of pages, and with
the scenario's batch approval (批量同意) declared. Each variant runs in a process of its
own; its CPU (Chromium's included, from the kernel's accounting of the process tree) and the
shop's are printed per decision, with decisions per minute, the ratios and the load
average. A variant's figure counts only once its approvals match the
ground truth, each refund approved once (the shop's audit log). ``bench/peers.py`` measures
the robot against Selenium robots with the same harness.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from common import Shop, seeded_shop, uncommented  # noqa: E402

PASSWORD = "bench-" + "pw-4711"
SCENARIO = ROOT / "scenarios" / "demo-shop" / "refunds.toml"
Variant = Callable[[str, Path, Path], int]  # (shop url, scenario file, work dir) -> decisions


def robot_variant(
    pages: int | str,
    *,
    batch: bool = False,
    chromium: str | None = None,
    args: tuple[str, ...] = (),
) -> Variant:
    """The robot with ``pages``; ``chromium`` a browser binary other than the one it picks
    (headless runs take Debian's chromium-headless-shell); ``args`` more Chromium switches
    (robots.toml's browser.args)."""

    def run(url: str, scenario_file: Path, work: Path) -> int:
        if chromium:
            os.environ["ROBOTS_CHROMIUM"] = chromium  # this variant's own process
        return robot_run(url, scenario_file, work, pages, batch=batch, args=args)

    run.spec = {"robot": pages, "batch": batch, "chromium": chromium}  # type: ignore[attr-defined]
    return run


def robot_run(
    url: str,
    scenario_file: Path,
    work: Path,
    pages: int | str,
    *,
    batch: bool,
    args: tuple[str, ...] = (),
) -> int:
    from robots.refunds.robot import RefundsRobot
    from robots.refunds.scenario import load_refund_scenario

    if batch:
        batched = work / "refunds.toml"
        work.mkdir(parents=True, exist_ok=True)
        batched.write_text(
            uncommented(scenario_file.read_text(encoding="utf-8"), "batch_approve"),
            encoding="utf-8",
        )
        scenario_file = batched
    ws = bench_workspace(work, pages, args)
    sc = load_refund_scenario(scenario_file, base_url=url)
    result = RefundsRobot(ws, sc, scenario_file).perform()
    if result.counts.get("system_exception"):
        raise RuntimeError(f"{result.counts['system_exception']} system exceptions")
    print(json.dumps({"counts": result.counts}), file=sys.stderr)
    return result.counts.get("approved", 0) + result.counts.get("handed_to_person", 0)


def bench_workspace(work: Path, pages: int | str, args: tuple[str, ...] = ()) -> Any:
    """The project's robots.toml in ``work``, with ``pages`` side by side, Chromium's
    ``args`` and the bench's credential; loaded."""
    from robots.registry import load_workspace

    work.mkdir(parents=True, exist_ok=True)
    creds = work / "credentials.toml"
    creds.write_text(f'[demo-shop]\nusername = "robot"\npassword = "{PASSWORD}"\n')
    creds.chmod(0o600)
    base = (ROOT / "robots.toml").read_text(encoding="utf-8")
    pages_value = f'"{pages}"' if isinstance(pages, str) else str(pages)
    base = re.sub(r"parallel_pages = \S+", f"parallel_pages = {pages_value}", base)
    if args:
        base = base.replace("\n[browser]\n", f"\n[browser]\nargs = {json.dumps(list(args))}\n")
    base = base.replace(
        'credentials_file = "~/.config/robots/credentials.toml"', f'credentials_file = "{creds}"'
    )
    base = base.replace('scenario = "scenarios/', f'scenario = "{ROOT}/scenarios/')
    if os.environ.get("BENCH_TRACE") == "0":  # what keeping a trace of failures costs
        base = base.replace("trace_on_failure = true", "trace_on_failure = false")
    (work / "robots.toml").write_text(base, encoding="utf-8")
    return load_workspace(work)


# -- one variant in a process of its own ---------------------------------------------------
def child(
    name: str, url: str, scenario: Path, work: Path, lookup: Callable[[str], Variant] | None = None
) -> None:
    """Run variant ``name`` (found by ``lookup``, else ``variant``); orphaned grandchildren
    (Chromium's helpers) are reparented here and reaped, so the parent's ``wait4`` counts
    their CPU too."""
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    decided = (lookup or variant)(name)(url, scenario, work)
    while True:
        try:
            if os.waitpid(-1, 0)[0] <= 0:
                break
        except ChildProcessError:
            break
    print(json.dumps({"decided": decided}))


def variant(name: str) -> Variant:
    """A variant by name; a robot variant's name may end in `` +--switch ...``: the same
    variant with those Chromium switches added (a lean setting measured on its own)."""
    base, _, switches = name.partition(" +")
    if switches:
        chosen = ROBOT_VARIANTS.get(base) or all_variants()[base]
        spec = chosen.spec  # type: ignore[attr-defined]
        return robot_variant(
            spec["robot"],
            batch=spec["batch"],
            chromium=spec["chromium"],
            args=tuple(switches.split()),
        )
    return all_variants()[name]


def all_variants() -> dict[str, Variant]:
    from peers import VARIANTS as PEERS

    fixed = {f"robot, {n} pages": robot_variant(n) for n in range(2, 9)}
    return {**PEERS, **ROBOT_VARIANTS, **fixed}


ROBOT_VARIANTS: dict[str, Variant] = {
    "robot, 1 page, full Chromium": robot_variant(1, chromium="/usr/bin/chromium"),
    "robot, 1 page": robot_variant(1),
    "robot, auto pages": robot_variant("auto"),
    "robot, auto pages, batch": robot_variant("auto", batch=True),
}


@dataclass
class Figure:
    decided: int
    seconds: float
    cpu_s: float  # the variant's process tree
    shop_cpu_s: float
    load: float  # 1-minute load average when it ended
    approved: int = 0  # the robot's own count (the audit log is checked apart)
    in_batch: int = 0  # of those, the approvals a batch approval carried

    @property
    def per_min(self) -> float:
        return self.decided / self.seconds * 60


@dataclass
class Bench:
    refunds: int
    seed: int
    tmp: Path = field(init=False)
    runs: int = 0
    script: str = __file__  # run with --child NAME …, it runs variant NAME

    def __enter__(self) -> Bench:
        from sandbox.seed import load_ground_truth

        self._dir = tempfile.TemporaryDirectory(prefix="bench-refunds-")
        self.tmp = Path(self._dir.name)
        self.seeded = seeded_shop(self.tmp, seed=self.seed, password=PASSWORD, refunds=self.refunds)
        truth = load_ground_truth(self.seeded)
        self.expected = {rid for rid, t in truth.items() if t["expected"] == "approve"}
        self.to_decide = sum(1 for t in truth.values() if t["expected"] != "untouched")
        # the daily total would stop a large shop early; it is not what is measured
        self.scenario = self.tmp / "refunds.toml"
        self.scenario.write_text(
            SCENARIO.read_text(encoding="utf-8").replace(
                "daily_auto_total = 20000", "daily_auto_total = 100000000"
            ),
            encoding="utf-8",
        )
        print(
            f"{self.refunds} refunds seeded (seed {self.seed}): {self.to_decide} to decide, "
            f"{len(self.expected)} eligible; {os.cpu_count()} cores"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()

    def measure(self, name: str, *, latency_ms: float = 0) -> Figure:
        self.runs += 1
        shop = Shop(self.seeded, self.tmp / f"shop{self.runs}", latency_ms=latency_ms)
        work = self.tmp / f"work{self.runs}"
        try:
            shop_before = shop.cpu_s()
            start = time.perf_counter()
            errors = self.tmp / f"stderr{self.runs}.txt"
            with errors.open("w") as err_file:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        self.script,
                        "--child",
                        name,
                        shop.url,
                        str(self.scenario),
                        str(work),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=err_file,
                    text=True,
                )
                out = proc.stdout.read() if proc.stdout else ""
                _, status, usage = os.wait4(proc.pid, 0)  # the whole tree's CPU, reaped
            err = errors.read_text()
            proc.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - start
            shop_cpu = shop.cpu_s() - shop_before
            audit = approvals(shop)
        finally:
            shop.stop()
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed ({proc.returncode}):\n{err[-3000:]}")
        decided = json.loads(out.strip().splitlines()[-1])["decided"]
        twice = [rid for rid, n in audit.items() if n > 1]
        if decided != self.to_decide or set(audit) != self.expected or twice:
            raise SystemExit(
                f"{name}: decided {decided}/{self.to_decide}, approvals differ from the ground "
                f"truth by {len(set(audit) ^ self.expected)}, approved twice: {twice[:5]}"
            )
        counts: dict[str, int] = {}
        for line in err.splitlines():
            if line.startswith('{"counts"'):
                counts = json.loads(line)["counts"]
        return Figure(
            decided,
            seconds,
            usage.ru_utime + usage.ru_stime,
            shop_cpu,
            os.getloadavg()[0],
            counts.get("approved", 0),
            counts.get("approved_in_batch", 0),
        )

    def rounds(
        self, variants: list[str], rounds: int, *, latency_ms: float = 0
    ) -> dict[str, Figure]:
        """Each variant once per round, rounds interleaved; the median round per variant."""
        where = f"{latency_ms:.0f} ms added to every answer" if latency_ms else "local shop"
        print(f"\n{where}: {rounds} round(s), each variant's approvals checked")
        seen: dict[str, list[Figure]] = {name: [] for name in variants}
        for r in range(rounds):
            for name in variants:
                fig = self.measure(name, latency_ms=latency_ms)
                seen[name].append(fig)
                print(
                    f"  [{r + 1}] {name:<28} {fig.decided:>5} decisions in {fig.seconds:7.1f} s "
                    f"= {fig.per_min:7.0f}/min  CPU {fig.cpu_s / fig.decided:6.3f} s a decision "
                    f"(+ shop {fig.shop_cpu_s / fig.decided:5.3f})  load {fig.load:4.2f}"
                )
                if fig.in_batch:
                    print(
                        f"      {fig.in_batch} of {fig.approved} approvals sent in batches "
                        f"({fig.in_batch / fig.approved:.0%}); each refund approved once "
                        "(audit log)"
                    )
        medians = {}
        for name, figs in seen.items():
            medians[name] = sorted(figs, key=lambda f: f.per_min)[len(figs) // 2]
        if rounds > 1:
            print("  medians")
            for name, fig in medians.items():
                spread = [round(f.per_min) for f in seen[name]]
                print(f"    {name:<28} {fig.per_min:7.0f}/min  (rounds {spread})")
        return medians

    @staticmethod
    def ratios(figs: dict[str, Figure], pairs: list[tuple[str, str]]) -> None:
        print("  ratios (decisions/min)")
        for a, b in pairs:
            if a in figs and b in figs:
                print(f"    {a} / {b}: {figs[a].per_min / figs[b].per_min:6.2f}x")


def approvals(shop: Shop) -> Counter[str]:
    with sqlite3.connect(shop.data / "shop.sqlite3") as conn:
        return Counter(r[0] for r in conn.execute("SELECT refund_id FROM audit_log"))


def bench_args(doc: str | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--refunds", type=int, default=600)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--latency-ms", type=float, default=150)
    ap.add_argument(
        "--variants",
        default="",
        help="variant names separated by ; instead of the default set "
        "(also 'robot, N pages' for N = 2..8; a robot variant's name + ' +--switch ...' "
        "adds Chromium switches)",
    )
    return ap.parse_args()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]))
        return
    args = bench_args(__doc__)
    chosen = [v.strip() for v in args.variants.split(";") if v.strip()]
    with Bench(args.refunds, args.seed) as bench:
        if chosen:
            bench.rounds(chosen, args.rounds)
            if args.latency_ms:
                bench.rounds(chosen, args.rounds, latency_ms=args.latency_ms)
            return
        figs = bench.rounds(["plain HTTP", *ROBOT_VARIANTS], args.rounds)
        bench.ratios(
            figs,
            [
                ("robot, 1 page", "robot, 1 page, full Chromium"),
                ("robot, auto pages", "robot, 1 page"),
                ("robot, auto pages, batch", "robot, auto pages"),
                ("robot, auto pages", "plain HTTP"),
            ],
        )
        if args.latency_ms:
            far = bench.rounds(list(ROBOT_VARIANTS), args.rounds, latency_ms=args.latency_ms)
            bench.ratios(
                far,
                [
                    ("robot, auto pages", "robot, 1 page"),
                    ("robot, auto pages, batch", "robot, 1 page"),
                ],
            )


if __name__ == "__main__":
    main()
