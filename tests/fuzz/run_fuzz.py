"""Run the fuzz suite and print (or write) its report.

    python tests/fuzz/run_fuzz.py --seed 0 --per-category 150 --jobs 2 --report fuzz-report.md
    python tests/fuzz/run_fuzz.py --quick                 # the set test_fuzz.py runs
    python tests/fuzz/run_fuzz.py --quick --update-known  # rewrite known_disagreements.txt

Prints one row per category (mutants; ort and onnxruntime accepted/refused; agreement; how
many refusals happened in the same phase; ort crashes, hangs and untyped exceptions;
onnxruntime crashes and hangs, which are not compared) and then every failure of ort with
both outcomes and the first line of each message. The exit status is 0 unless ``--strict``
is given and some failure is not in known_disagreements.txt.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the fuzz package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz import harness, report, suite  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=suite.QUICK_SEED, help="seed of the random categories")
    parser.add_argument("--per-category", type=int, default=suite.QUICK_PER_CATEGORY,
                        help="mutants per random category")
    parser.add_argument("--quick", action="store_true", help="the quick CI set (seed and size of test_fuzz.py)")
    parser.add_argument("--categories", nargs="+", choices=suite.ALL_CATEGORIES, help="only these categories")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at a time")
    parser.add_argument("--timeout", type=float, default=harness.DEFAULT_TIMEOUT, help="seconds per mutant and runtime")
    parser.add_argument("--memory-gib", type=float, default=harness.DEFAULT_MEMORY / (1 << 30),
                        help="address-space limit of each child")
    parser.add_argument("--ort-only", action="store_true", help="do not run onnxruntime (no agreement figures)")
    parser.add_argument("--report", type=Path, help="write the markdown report here")
    parser.add_argument("--update-known", action="store_true",
                        help="rewrite known_disagreements.txt with this run's failures")
    parser.add_argument("--strict", action="store_true", help="exit 1 on failures not in known_disagreements.txt")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the selected mutants; print the table and failures; 1 under --strict with news."""
    args = _parser().parse_args(argv)
    if args.quick:
        args.seed, args.per_category = suite.QUICK_SEED, suite.QUICK_PER_CATEGORY
    mutants = suite.select(args.seed, args.per_category, args.categories)
    runtimes = ("ort",) if args.ort_only else harness.RUNTIMES
    print(f"{len(mutants)} mutants, seed {args.seed}, {args.per_category} per random category, "
          f"{args.jobs} jobs, runtimes {', '.join(runtimes)}", file=sys.stderr)
    started = time.monotonic()
    done = 0

    def progress(_result) -> None:
        nonlocal done
        done += 1
        if done % 200 == 0:
            print(f"  {done}/{len(mutants)} in {time.monotonic() - started:.0f} s", file=sys.stderr)

    with harness.Harness(runtimes, jobs=args.jobs, timeout=args.timeout,
                         memory=int(args.memory_gib * (1 << 30))) as running:
        results = running.run(mutants, progress)
    elapsed = time.monotonic() - started
    known = report.load_known()
    title = (f"Fuzz report: seed {args.seed}, {args.per_category} per random category, "
             f"{len(results)} mutants, {elapsed:.0f} s with {args.jobs} jobs")
    text = report.markdown(results, known, title)
    if args.report:
        args.report.write_text(text, encoding="utf-8")
        print(f"report written to {args.report}", file=sys.stderr)
    print(text)
    if args.update_known:
        count = report.write_known(results, known)
        print(f"{report.KNOWN_PATH} now lists {count} failures", file=sys.stderr)
    unlisted, _ = report.check_known(results, known)
    return 1 if args.strict and unlisted else 0


if __name__ == "__main__":
    sys.exit(main())
