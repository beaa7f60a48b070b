"""Blocks of README.md and docs/*.md that show what a deterministic command prints.

A generated block sits between two markers:

    <!-- generated: vision-jax plan -->
    ...
    <!-- end generated -->

The marker names a `vision-jax` command line, run in-process. Alone, its
standard output is pasted as a ```text block. Followed by `| VIEW`, one of
VIEWS renders the output instead (a sentence or a Markdown table from the
command's `--format json` rows). A view may keep hand-written cells of the
block it replaces (the `why` column of a table), so prose stays prose and
only the figures are generated. A test holds every block equal to what the
commands print, so the figures cannot drift from the code.

    python -m vision_jax.scaling.readme --check   # exit 1, listing the blocks that differ
    python -m vision_jax.scaling.readme --write   # rewrite them
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import io
import json
import pathlib
import re
import shlex
import sys
from typing import Any, Callable

ROOT = pathlib.Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- generated: (?P<spec>.+?) -->\n(?P<body>.*?)<!-- end generated -->",
                   re.DOTALL)


def documents(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """README.md and the pages under docs/."""
    return [p for p in (root / "README.md", *sorted((root / "docs").glob("*.md"))) if p.exists()]


@functools.cache
def run(command: str) -> str:
    """Standard output of a `vision-jax ...` command line, run in this process (once)."""
    from vision_jax import cli
    argv = shlex.split(command)
    if argv[0] != "vision-jax":
        raise ValueError(f"generated block: {command!r} is not a vision-jax command")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(argv[1:])
    if code:
        raise RuntimeError(f"generated block: `{command}` exited with {code}")
    return out.getvalue()


def _json_rows(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def mfu_sentence(output: str, old: str) -> str:
    """`vision-jax plan --format json`: each row's MFU to match its published time."""
    rows = [r for r in _json_rows(output) if r.get("mfu_to_match") is not None]
    return ", ".join(f"{r['name']} {100 * r['mfu_to_match']:.1f}%" for r in rows) + ".\n"


def differences_table(output: str, old: str) -> str:
    """`vision-jax tables --format json`: exact and published counts of the rows the block
    lists (first column, a preset name), with their hand-written `why` cells kept."""
    from vision_jax.scaling.tables import _pct, _si
    by_name = {r["name"]: r for r in _json_rows(output)}
    lines = [line for line in old.splitlines() if line.startswith("|")][2:]
    out = ["| row | ours | published | diff | why |", "|---|---|---|---|---|"]
    for line in lines:
        cells = _cells(line)
        name, why = cells[0], cells[-1]
        if name not in by_name:
            raise ValueError(f"generated table: {name!r} is not a row of `vision-jax tables`")
        r = by_name[name]
        out.append(f"| {name} | {r['params']:,} | {_si(r['published_params'], 4)} | "
                   f"{_pct(r['rel_diff'])} | {why} |")
    return "\n".join(out) + "\n"


# name -> function(command output, the block's current text) -> the block's text
VIEWS: dict[str, Callable[[str, str], str]] = {
    "mfu": mfu_sentence,
    "differences": differences_table,
}


def render(spec: str, old: str) -> str:
    """The text of the block whose marker says `spec` ('COMMAND' or 'COMMAND | VIEW')."""
    command, _, view = (part.strip() for part in spec.partition("|"))
    output = run(command)
    if not view:
        return f"```text\n{output.rstrip()}\n```\n"
    if view not in VIEWS:
        raise ValueError(f"generated block: unknown view {view!r}; valid: {list(VIEWS)}")
    return VIEWS[view](output, old)


def regenerate(text: str) -> tuple[str, list[tuple[int, str, str, str]]]:
    """`text` with every block rendered anew, and the blocks that changed as
    (line, spec, old, new)."""
    changed = []

    def one(match: re.Match) -> str:
        spec, old = match["spec"], match["body"]
        new = render(spec, old)
        if new != old:
            changed.append((text.count("\n", 0, match.start()) + 1, spec, old, new))
        return f"<!-- generated: {spec} -->\n{new}<!-- end generated -->"

    return BLOCK.sub(one, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision_jax.scaling.readme",
                                     description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 if a block differs")
    action.add_argument("--write", action="store_true", help="rewrite the blocks that differ")
    args = parser.parse_args(argv)
    stale = 0
    for path in documents():
        text = path.read_text()
        new, changed = regenerate(text)
        for line, spec, old, body in changed:
            stale += 1
            print(f"{path.relative_to(ROOT)}:{line}: `{spec}` differs")
            if args.check:
                sys.stdout.writelines(difflib.unified_diff(
                    old.splitlines(True), body.splitlines(True), "in the file", "printed now", n=0))
        if args.write and changed:
            path.write_text(new)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
