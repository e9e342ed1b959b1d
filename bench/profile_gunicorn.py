"""Profile the real gunicorn workers under wrk load: `python -m bench.profile_gunicorn`.

Starts the stack as bench.run does (bench.rig), drives the Braze and then the SFMC path with
wrk, and samples every gunicorn worker of the connector with py-spy (`pip install py-spy`; a
sampling profiler that reads the process from outside, all threads, idle threads left out, so
the shares are of CPU time). Prints, per path, the inclusive share of the workers' CPU spent under
each of the heaviest functions, and the slowest leaves ("self" time).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench.load import SfmcRun, braze_send, sfmc_tokens, tokens_needed
from bench.measure import LoadRuns
from bench.plan import BRAZE_PATH, BRAZE_TOKEN, SFMC_PATH, Plan
from bench.rig import Rig
from stack import Stack

#: Library frames worth listing (everything else is summed into its callers).
LIBRARIES = ("marshmallow/", "redis/", "jwt/", "flask/", "werkzeug/", "gunicorn/", "json/",
             "logging/", "copy.py", "uuid.py", "hmac.py")


def record(pid: int, seconds: float, rate: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy record in raw (collapsed stacks) form, in the background."""
    return subprocess.Popen(
        [
            shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
            "record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(rate),
            "-f", "raw", "-o", str(out), "--nonblocking", "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def frame_name(frame: str) -> str:
    """`func (path/to/file.py:12)` → `func (file area)`, line numbers dropped."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{func} ({path})"


def summarise(
    files: list[Path], top: int
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """Total samples, inclusive counts per function, self counts per leaf."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [frame_name(f) for f in stack.split(";")[1:]]  # drop the thread frame
            total += count
            for name in set(frames):
                inclusive[name] += count
            if frames:
                leaf[frames[-1]] += count
    return total, inclusive.most_common(), leaf.most_common(top)


def _say(text: str) -> None:
    """Progress, to stderr."""
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Drive each path with wrk while py-spy samples the workers; print the profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_gunicorn")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per path")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=30, help="library functions shown")
    args = parser.parse_args(argv)
    if not (shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy").exists()):
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    plan = Plan.from_args(
        argparse.Namespace(
            smoke=False, duration=args.duration + 2, connections=None, wrk_threads=2,
            rounds=1, workers=2, threads=8, commit_sends=1,
        )
    )
    with Stack() as stack:
        rig = Rig.start(plan, stack, _say)
        load_runs = LoadRuns(plan, rig, _say)
        load_runs.warm_up()
        tmp = Path(tempfile.mkdtemp(prefix="pc-pyspy-"))
        for kind in ("braze", "sfmc") if rig.sfmc_ok else ("braze",):
            workers = rig.web.family()[1:]
            outs = [tmp / f"{kind}-{pid}.txt" for pid in workers]
            result: dict[str, Any] = {}

            def load(kind: str = kind, result: dict[str, Any] = result) -> None:
                if kind == "braze":
                    campaign, send_key = braze_send()
                    env = {"BENCH_CAMPAIGN": campaign, "BENCH_SEND_KEY": send_key,
                           "BENCH_TOKEN": BRAZE_TOKEN}
                    result["run"] = load_runs.measure(
                        "braze", rig.web.url + BRAZE_PATH, "braze", env
                    )
                else:
                    ids = SfmcRun.new("pyspy")
                    with sfmc_tokens(ids, tokens_needed(6000, plan.duration, 2)) as path:
                        result["run"] = load_runs.measure(
                            "sfmc", rig.web.url + SFMC_PATH, "sfmc",
                            {"BENCH_TOKENS_FILE": str(path)},
                        )

            driver = threading.Thread(target=load)
            driver.start()
            threading.Event().wait(1.0)  # let the load settle
            spies = [record(pid, args.duration, args.rate, out)
                     for pid, out in zip(workers, outs, strict=True)]
            for spy in spies:
                spy.wait()
            driver.join()
            run = result["run"]
            total, inclusive, leaves = summarise(outs, args.top)
            print(f"\n===== {kind}: {run.wrk.rps:,.0f} req/s, gunicorn "
                  f"{run.cpu_us_per_request:.0f} µs CPU per request (py-spy slows the workers "
                  f"a little); {total} samples =====")
            print("inclusive share of the workers' CPU, the project's own functions:")
            for name, count in inclusive:
                if ("(connector/" in name or "(adapters/" in name) and count / total >= 0.002:
                    print(f"  {100 * count / total:5.1f}%  {name}")
            print("inclusive share, libraries:")
            shown = [(n, c) for n, c in inclusive if any(k in n for k in LIBRARIES)]
            for name, count in shown[: args.top]:
                print(f"  {100 * count / total:5.1f}%  {name}")
            print("self (leaf) share:")
            for name, count in leaves:
                print(f"  {100 * count / total:5.1f}%  {name}")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
