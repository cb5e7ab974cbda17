"""Page weight in a real browser, and optionally Lighthouse, on the demo.

Makes a throw-away data folder (SQLite), migrates it, loads the demo, serves it with
``python -m hypervision serve`` on a free loopback port, signs in as a demo officer in
Chromium (Playwright, ``/usr/bin/chromium``) and, for each main page, prints the bytes
transferred on a first load (empty cache) and on a second load (same browser context, its
cache warm), from the Resource Timing entries of the page (the document, every file and every
fetch made until the network is idle). With ``--lighthouse``, runs Lighthouse (the npm dev
dependency, mobile preset: a slow 4G and a 4× slower CPU) on the same pages and prints its
performance, accessibility and best-practices scores.

    .venv/bin/python bench/pages.py [--lighthouse] [--user antoine.roux] [--keep]

Targets (issue 16): every main page < 300 KB on a first load, the map < 700 KB; Lighthouse
mobile performance ≥ 90, accessibility 100, best practices 100.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
HOST = "127.0.0.1"
PASSWORD = "Hypervision-JO2024!"  # noqa: S105  # the demo's (README), never a deployment
SESSION_COOKIE = "hv_session"
KB = 1000
# Issue 16: first-load weight targets (bytes), the map's apart.
TARGET_BYTES = 300 * KB
MAP_TARGET_BYTES = 700 * KB
ATTEMPTS = 3  # Lighthouse runs per page before giving up on it
TARGET_SCORES = {"performance": 90, "accessibility": 100, "best-practices": 100}

SUM_TRANSFERRED = """() => {
  const entries = [...performance.getEntriesByType("navigation"),
                   ...performance.getEntriesByType("resource")];
  return {
    bytes: entries.reduce((total, e) => total + (e.transferSize || 0), 0),
    requests: entries.length,
    cached: entries.filter((e) => e.transferSize === 0).length,
    files: entries.map((e) => [e.name.replace(location.origin, ""), e.transferSize || 0]),
  };
}"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # noqa: T201


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Demo:
    """The demo served from a throw-away data folder."""

    folder: Path
    port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))  # for every command
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERVISION_")}
        env.update(
            HYPERVISION_DATA_DIR=str(self.folder),
            HYPERVISION_SECRET_KEY=self.secret,
            HYPERVISION_BIND_HOST=HOST,
            HYPERVISION_BIND_PORT=str(self.port),
        )
        return env

    def run(self, *args: str) -> None:
        done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "hypervision", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"hypervision {' '.join(args)} failed:\n{done.stderr.decode()}")

    def start(self) -> None:
        log("migrating and loading the demo…")
        self.run("migrate")
        self.run("demo", "load")
        sink = (self.folder / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hypervision", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited: {self.tail()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                return
            time.sleep(0.2)
        raise SystemExit(f"the server did not start: {self.tail()}")

    def tail(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.contextmanager
def demo_server(keep: bool) -> Iterator[Demo]:
    folder = Path(tempfile.mkdtemp(prefix="hv-bench-pages-"))
    demo = Demo(folder)
    try:
        demo.start()
        yield demo
    finally:
        demo.stop()
        if keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Weight:
    name: str
    path: str
    first: int
    second: int
    requests: int
    cached_second: int
    files: list[tuple[str, int]]


async def measure(base: str, user: str) -> tuple[list[Weight], str, list[tuple[str, str]]]:
    """Weights of the main pages; the session cookie and the (name, path) of the pages."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            # Sign in once (and end the guided tour) to get a session for the other pages.
            context = await browser.new_context(base_url=base, locale="fr-FR")
            page = await context.new_page()
            await page.goto("/connexion")
            await page.fill("#username", user)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/main-courante**")
            csrf = await page.get_attribute('meta[name="csrf-token"]', "content")
            await page.request.post("/visite", form={"csrf_token": csrf or ""})
            entry = await page.get_attribute("#fil a[href^='/entrees/']", "href")
            cookies = await context.cookies()
            session = next(c["value"] for c in cookies if c["name"] == SESSION_COOKIE)
            await context.close()

            pages = [
                ("sign-in", "/connexion"),
                ("feed", "/main-courante"),
                ("new entry", "/main-courante/nouvelle"),
                ("entry", entry or "/main-courante"),
                ("map", "/carte"),
                ("search", "/recherche?q=stade"),
                ("inbox", "/boite"),
            ]
            weights = []
            for name, path in pages:
                context = await browser.new_context(base_url=base, locale="fr-FR")
                if name != "sign-in":
                    await context.add_cookies(
                        [c for c in cookies if c["name"] == SESSION_COOKIE]  # type: ignore[misc]
                    )
                page = await context.new_page()
                await page.goto(path, wait_until="networkidle")
                first = await page.evaluate(SUM_TRANSFERRED)
                await page.goto(path, wait_until="networkidle")
                second = await page.evaluate(SUM_TRANSFERRED)
                weights.append(
                    Weight(
                        name,
                        path,
                        first["bytes"],
                        second["bytes"],
                        first["requests"],
                        second["cached"],
                        first["files"],
                    )
                )
                await context.close()
            return weights, session, pages
        finally:
            await browser.close()


def lighthouse(url: str, session: str | None, out: Path) -> dict[str, Any]:
    """Lighthouse's category scores (0–100) for one page, mobile preset (its default)."""
    if not LIGHTHOUSE.exists():
        raise SystemExit("Lighthouse is missing: run `make install` (npm dev dependency)")
    argv = [
        str(LIGHTHOUSE),
        url,
        "--only-categories=performance,accessibility,best-practices",
        "--output=json",
        f"--output-path={out}",
        "--quiet",
        "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
    ]
    if session:
        argv.append("--extra-headers=" + json.dumps({"Cookie": f"{SESSION_COOKIE}={session}"}))
    env = {**os.environ, "CHROME_PATH": str(CHROMIUM)}
    for attempt in range(1, ATTEMPTS + 1):
        out.unlink(missing_ok=True)
        done = subprocess.run(argv, env=env, capture_output=True, check=False)  # noqa: S603
        if done.returncode == 0 and out.exists():
            break
        # On a busy machine the trace is sometimes lost (NO_NAVSTART): run it again.
        log(f"lighthouse failed on {url} (attempt {attempt}): {done.stderr.decode()[-300:]}")
    else:
        return {"failed": [f"Lighthouse did not complete ({ATTEMPTS} attempts)"]}
    report: dict[str, Any] = json.loads(out.read_text())
    scores: dict[str, Any] = {
        key: round((category.get("score") or 0) * 100)
        for key, category in report["categories"].items()
    }
    audits = report.get("audits", {})
    for metric in ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time"):
        if metric in audits:
            scores[metric] = round(audits[metric].get("numericValue") or 0)
    scores["failed"] = [
        audit_id
        for category in report["categories"].values()
        if category["id"] != "performance"
        for ref in category.get("auditRefs", [])
        if (audit_id := ref["id"]) in audits
        and audits[audit_id].get("score") is not None
        and audits[audit_id]["score"] < 1
        and ref.get("weight", 0) > 0
    ]
    return scores


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median performance (the lower middle one for an even count)."""
    ranked = sorted(runs, key=lambda r: r.get("performance") or 0)
    return ranked[(len(ranked) - 1) // 2]


def load_average() -> str:
    """The machine's one-minute load average: performance drops when it exceeds the cores."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def kb(n: int) -> str:
    return f"{n / KB:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", default="antoine.roux", help="demo login (no MFA)")
    parser.add_argument("--lighthouse", action="store_true", help="also run Lighthouse")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--files", action="store_true", help="list each page's files (first load)")
    parser.add_argument(
        "--only", help="Lighthouse on these pages only (comma-separated names, e.g. sign-in,map)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="Lighthouse runs per page; the run of median performance is shown (default 1)",
    )
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is required")

    results: dict[str, Any] = {"pages": [], "lighthouse": {}}
    with demo_server(args.keep) as demo:
        log("measuring page weights…")
        weights, session, pages = asyncio.run(measure(demo.base, args.user))
        print("| page | path | first load (kB) | second load (kB) | requests | target |")  # noqa: T201
        print("|---|---|---:|---:|---:|---|")  # noqa: T201
        for w in weights:
            target = MAP_TARGET_BYTES if w.name == "map" else TARGET_BYTES
            verdict = "ok" if w.first < target else f"over {kb(target)}"
            print(  # noqa: T201
                f"| {w.name} | `{w.path}` | {kb(w.first)} | {kb(w.second)} "
                f"| {w.requests} ({w.cached_second} cached) | {verdict} |"
            )
            results["pages"].append(w.__dict__)
        if args.files:
            for w in weights:
                print(f"\n{w.name} (first load):")  # noqa: T201
                for url, size in sorted(w.files, key=lambda f: -f[1]):
                    print(f"  {kb(size):>7} kB  {url[:110]}")  # noqa: T201
        if args.lighthouse:
            log("running Lighthouse (mobile preset)…")
            print()  # noqa: T201
            print(  # noqa: T201
                "| page | performance | accessibility | best practices | FCP (ms) "
                "| LCP (ms) | TBT (ms) | failed audits | runs (performance) | load |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")  # noqa: T201
            chosen = {n.strip() for n in args.only.split(",")} if args.only else None
            for name, path in pages:
                if chosen is not None and name not in chosen:
                    continue
                cookie = None if name == "sign-in" else session
                runs = []
                for run in range(max(1, args.runs)):
                    suffix = f"-{run + 1}" if args.runs > 1 else ""
                    out = demo.folder / f"lighthouse-{name.replace(' ', '-')}{suffix}.json"
                    runs.append(lighthouse(demo.base + path, cookie, out))
                s = median_run(runs)
                results["lighthouse"][name] = {**s, "runs": runs}
                print(  # noqa: T201
                    f"| {name} | {s.get('performance')} | {s.get('accessibility')} "
                    f"| {s.get('best-practices')} | {s.get('first-contentful-paint')} "
                    f"| {s.get('largest-contentful-paint')} | {s.get('total-blocking-time')} "
                    f"| {', '.join(s.get('failed', [])) or '—'} "
                    f"| {', '.join(str(r.get('performance')) for r in runs)} "
                    f"| {load_average()} |"
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
