"""`make bench`: run every benchmark in tests/bench/ and write their output to bench-report.txt.

Each benchmark is its own process with its own servers, so one cannot disturb the next.
`make bench BENCH_ARGS="worker watcher"` runs only those whose file name contains a word given;
options (words starting with --, e.g. `BENCH_ARGS="system --quick --large=2000"`) are passed to each of them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    options = [word for word in argv if word.startswith("--")]
    words = [word for word in argv if not word.startswith("--")]
    if words:
        scripts = [s for s in scripts if any(word in s.stem for word in words)]
    report = ROOT / "bench-report.txt"
    failed = []
    with report.open("w") as out:
        header = f"k8sdm benchmarks, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n"
        out.write(header)
        print(header, end="")
        for script in scripts:
            title = f"\n===== {script.stem} =====\n"
            print(title, end="", flush=True)
            out.write(title)
            started = time.monotonic()
            proc = subprocess.Popen([sys.executable, str(script), *options], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            for line in proc.stdout:
                print(line, end="", flush=True)
                out.write(line)
            code = proc.wait()
            footer = f"({script.stem}: exit {code}, {time.monotonic() - started:.0f}s)\n"
            print(footer, end="")
            out.write(footer)
            if code:
                failed.append(script.stem)
    print(f"\nreport written to {report}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
