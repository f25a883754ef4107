"""A synthetic menu file of about 10 000 nodes, valid and shaped like the product's, to time the loader and linter.

``python -m bench.big_menu [--nodes 10000]`` writes it (a main file and one included file per branch of the
main menu, as ``config/menus.yaml`` is split), then times ``python -m menus lint`` on it, whole command and
in-process load + lint, best of ``--repeat`` runs. The README "Benchmark" section quotes the figure.

The menus are what an operator's file grows into: the main file's system texts, labels, samples and brand
(copied from ``config/menus.yaml``), then a tree of menus (at most 8 options each, French and English
labels) whose leaves are journeys of eight nodes using the product's dialog steps: a router, an amount
``input``, an ``action`` that checks it, a ``confirm`` menu, a committing ``action``, and the message and
end screens its outcomes lead to, with placeholders that have sample values. Every node is reachable and
every screen fits the USSD and SMS sizes, so the linter has to walk all of it and finds nothing to say.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from menus.__main__ import check
from menus.loader import load_menus

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
JOURNEY_NODES = 8
FAN_OUT = 8
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_DUMPER, allow_unicode=True, sort_keys=False, width=200)
KEPT_SECTIONS = ("languages", "default_language", "brand", "system_texts", "labels", "samples")


def _journey(prefix: str, number: int) -> dict[str, Any]:
    """The eight nodes of one journey; its entry is ``{prefix}``."""
    n = f"{number:05d}"
    return {
        prefix: {"kind": "router", "routes": [{"when": "account_count > 1", "target": f"{prefix}_ask"}],
                 "default": f"{prefix}_ask"},
        f"{prefix}_ask": {
            "kind": "input", "store": "amount", "next": f"{prefix}_check",
            "validator": {"type": "amount", "min": 100, "max": 500000},
            "text": {"fr": f"Service {n}\nMontant en FCFA (100 à 500 000):",
                     "en": f"Service {n}\nAmount in FCFA (100 to 500,000):"},
            "error": {"fr": "Montant invalide.", "en": "Invalid amount."}},
        f"{prefix}_check": {"kind": "action", "step": "payments.check_credit",
                            "outcomes": {"ok": f"{prefix}_confirm", "same_awaiting": f"{prefix}_confirm",
                                         "out_of_range": f"{prefix}_range"}},
        f"{prefix}_confirm": {
            "kind": "menu", "confirm": True,
            "text": {"fr": f"Confirmer la demande {n} de {{amount:money}} pour le compte {{account_number}} ?",
                     "en": f"Confirm request {n} of {{amount:money}} for account {{account_number}}?"},
            "options": [{"label": {"fr": "Confirmer", "en": "Confirm"}, "target": f"{prefix}_do"},
                        {"label": {"fr": "Annuler", "en": "Cancel"}, "target": "home"}]},
        f"{prefix}_do": {"kind": "action", "step": "incidents.open_ticket", "commit": True,
                         "outcomes": {"ok": f"{prefix}_done", "kept": f"{prefix}_done",
                                      "duplicate": f"{prefix}_dup"}},
        f"{prefix}_done": {
            "kind": "message",
            "text": {"fr": f"Demande {n} enregistrée: {{amount:money}}, zone {{zone}}. Un SMS vous sera envoyé.",
                     "en": f"Request {n} recorded: {{amount:money}}, zone {{zone}}. You will get an SMS."}},
        f"{prefix}_range": {
            "kind": "message",
            "text": {"fr": "Ce montant n'est pas accepté. Appelez le {help_line}.",
                     "en": "This amount is not accepted. Call {help_line}."}},
        f"{prefix}_dup": {"kind": "end", "text": {"fr": f"Demande {n} déjà reçue. Merci.",
                                                  "en": f"Request {n} already received. Thank you."}},
    }


def _menu(node_id: str, title: int, children: list[str]) -> dict[str, Any]:
    return {node_id: {"kind": "menu", "text": {"fr": f"Rubrique {title}", "en": f"Section {title}"},
                      "options": [{"label": {"fr": f"Choix {title}.{i}", "en": f"Choice {title}.{i}"},
                                   "target": child} for i, child in enumerate(children, 1)]}}


def generate(directory: Path, nodes: int = 10_000) -> Path:
    """Write the menu file (and its includes) into ``directory``; returns the main file's path."""
    base = yaml.load((ROOT / "config" / "menus.yaml").read_bytes(), Loader=_LOADER)
    journeys = max(1, int((nodes - 2) / (JOURNEY_NODES + 1 / (FAN_OUT - 1))))
    # Branches of the main menu, each a file: journeys grouped by FAN_OUT into menus, level by level.
    branches = min(FAN_OUT, journeys)
    (directory / "menus").mkdir(parents=True, exist_ok=True)
    includes, home_targets, made, title = [], [], 1, 0
    for branch in range(branches):
        share = range(branch * journeys // branches, (branch + 1) * journeys // branches)
        body: dict[str, Any] = {}
        level = []
        for number in share:
            body.update(_journey(f"j{number}", number))
            level.append(f"j{number}")
        depth = 0
        while len(level) > 1:
            depth += 1
            parents = []
            for start in range(0, len(level), FAN_OUT):
                title += 1
                node_id = f"m{branch}_{depth}_{start // FAN_OUT}"
                body.update(_menu(node_id, title, level[start:start + FAN_OUT]))
                parents.append(node_id)
            level = parents
        home_targets.append(level[0])
        made += len(body)
        name = f"menus/branch_{branch}.yaml"
        includes.append(name)
        (directory / name).write_text(_dump({"flow": "main", "nodes": body}), encoding="utf-8")
    main = {k: base[k] for k in KEPT_SECTIONS if k in base}
    main["entry_points"] = {"ussd": {"*": "main"}}
    main["include"] = includes
    main["flows"] = {"main": {"version": "1", "start": "home", "home": "home", "nodes": {
        **_menu("home", 0, home_targets),
        "bye": {"kind": "end", "text": {"fr": "Merci, à bientôt.", "en": "Thank you, goodbye."}}}}}
    main["flows"]["main"]["nodes"]["home"]["options"].append(
        {"key": "9", "label": {"fr": "Quitter", "en": "Quit"}, "target": "bye"})
    path = directory / "menus.yaml"
    path.write_text(_dump(main), encoding="utf-8")
    print(f"{made + 2} nodes in {path} and {len(includes)} included files", file=sys.stderr)
    return path


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_lint(path: Path, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` runs, in seconds: the whole ``python -m menus lint`` command (wall and CPU,
    interpreter start-up and imports included), and load, load + lint in this process (CPU). CPU time is
    the figure to read on a shared machine: wall time there includes waiting for a core."""
    check(str(ROOT / "config" / "menus.yaml"))  # imports and first-use caches out of the timings
    figures: dict[str, list[float]] = {"command_wall_s": [], "command_cpu_s": [], "load_cpu_s": [],
                                       "load_and_lint_cpu_s": []}
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), _child_cpu()
        done = subprocess.run([PY, "-m", "menus", "lint", str(path)], cwd=ROOT, capture_output=True, text=True,
                              check=False)
        figures["command_wall_s"].append(time.perf_counter() - wall)
        figures["command_cpu_s"].append(_child_cpu() - cpu)
        if done.returncode:
            raise SystemExit(f"lint failed on the generated file:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        started = time.process_time()
        load_menus(path)
        figures["load_cpu_s"].append(time.process_time() - started)
        started = time.process_time()
        problems = check(str(path))
        figures["load_and_lint_cpu_s"].append(time.process_time() - started)
        if problems:
            raise SystemExit("the generated file should lint clean:\n" + "\n".join(map(str, problems[:20])))
    return {name: min(values) for name, values in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the file here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="big-menu-") as scratch:
        directory = args.keep or Path(scratch)
        path = generate(directory, args.nodes)
        figures = time_lint(path, args.repeat)
    print(f"{args.nodes} nodes, best of {args.repeat}: `python -m menus lint` {figures['command_wall_s']:.2f} s "
          f"wall, {figures['command_cpu_s']:.2f} s CPU (start-up and imports included); in-process CPU: load "
          f"{figures['load_cpu_s']:.2f} s, load + lint {figures['load_and_lint_cpu_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
