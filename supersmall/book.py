"""The executed notebook series as a static book: one HTML page per notebook plus an index.

    make run && make book                    # runs/nb/*.ipynb -> runs/book/index.html
    python -m supersmall.book --executed runs/nb --out runs/book

or, from Python::

    from supersmall.book import build_book
    index = build_book("runs/nb", "runs/book")

Each executed notebook (``NN_name.ipynb``, as ``supersmall notebooks run --out runs/nb`` writes them)
becomes ``NN_name.html`` with nbconvert's ``HTMLExporter``: outputs and figures are embedded (PNG
as base64 data), so a page is one self-contained file. The ``parameters`` cell and the one papermill
injects are left out. ``index.html`` lists the pages in order with each notebook's title (its first
markdown heading), its status and seconds from ``summary.json`` when the runner left one.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path
from typing import Any

from supersmall.errors import UserError

HIDDEN_TAGS = ("parameters", "injected-parameters")
_NAME = re.compile(r"^\d\d_.+\.ipynb$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<title>.+?)\s*#*\s*$")


class BookError(UserError):
    """Nothing to render (the series has not run); the message names the command to run first."""


def executed_notebooks(executed_dir: str | Path) -> list[Path]:
    """The executed ``NN_*.ipynb`` in ``executed_dir``, in name order (papermill's copies)."""
    folder = Path(executed_dir)
    found = sorted(p for p in folder.glob("*.ipynb") if _NAME.match(p.name)) if folder.is_dir() else []
    if not found:
        raise BookError(f"no executed notebooks (NN_*.ipynb) in {str(folder)!r}: run `make run` first "
                        f"(or `supersmall notebooks run --out {folder}`)")
    return found


def notebook_title(nb: Any, default: str) -> str:
    """The text of the first markdown heading of ``nb`` (an nbformat notebook), else ``default``."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            m = _HEADING.match(line)
            if m:
                return m.group("title").strip()
    return default


def _summary(executed_dir: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """``summary.json``'s results by notebook file name, and its profile; ({}, None) when absent."""
    try:
        data = json.loads((executed_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}, None
    results = {r["notebook"]: r for r in data.get("results", []) if isinstance(r, dict) and "notebook" in r}
    return results, data.get("profile")


def _exporter():
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter()  # the "lab" template: CSS inline, images as data URIs
    hide = TagRemovePreprocessor(remove_cell_tags=set(HIDDEN_TAGS), enabled=True)
    exporter.register_preprocessor(hide, enabled=True)
    return exporter


def _page_nav(pages: list[dict[str, Any]], i: int) -> str:
    links = ['<a href="index.html">contents</a>']
    if i > 0:
        links.insert(0, f'<a href="{pages[i - 1]["href"]}">&larr; {html.escape(pages[i - 1]["title"])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1]["href"]}">{html.escape(pages[i + 1]["title"])} &rarr;</a>')
    style = "font-family:sans-serif;font-size:14px;padding:8px 16px;border-bottom:1px solid #ddd;"
    return f'<nav class="supersmall-book" style="{style}">' + " &middot; ".join(links) + "</nav>"


def _index_html(pages: list[dict[str, Any]], profile: str | None) -> str:
    rows = []
    for p in pages:
        seconds = f"{p['seconds']:.1f}" if isinstance(p.get("seconds"), (int, float)) else ""
        status = html.escape(str(p.get("status") or ""))
        rows.append(f'<tr><td>{html.escape(p["number"])}</td><td><a href="{html.escape(p["href"])}">'
                    f'{html.escape(p["title"])}</a></td><td>{status}</td><td class="num">{seconds}</td></tr>')
    total = sum(p["seconds"] for p in pages if isinstance(p.get("seconds"), (int, float)))
    subtitle = f"profile <code>{html.escape(profile)}</code>, " if profile else ""
    subtitle += f"{len(pages)} notebooks" + (f", {total:.0f} s in all" if total else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>supersmall: the notebook series</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 860px; margin: 40px auto;
       padding: 0 16px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: 6px 10px; border-bottom: 1px solid #e4e4e4; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
a {{ color: #0b5cad; text-decoration: none; }} a:hover {{ text-decoration: underline; }}
p.sub {{ color: #666; }}
</style></head>
<body>
<h1>supersmall: the notebook series</h1>
<p class="sub">{subtitle}. Each page is the executed notebook with its outputs and figures.</p>
<table>
<thead><tr><th>#</th><th>notebook</th><th>status</th><th class="num">seconds</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</body></html>
"""


def build_book(executed_dir: str | Path = "runs/nb", out_dir: str | Path = "runs/book") -> Path:
    """Render every executed notebook in ``executed_dir`` to ``out_dir``; return ``index.html``'s path.

    Raises :class:`BookError` (one sentence naming ``make run``) when there is nothing to render.
    """
    import nbformat

    executed = Path(executed_dir)
    paths = executed_notebooks(executed)
    summary, profile = _summary(executed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notebooks, pages = [], []
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        info = summary.get(path.name, {})
        pages.append({"number": path.name[:2], "href": path.stem + ".html", "title": notebook_title(nb, path.stem),
                      "seconds": info.get("seconds"), "status": info.get("status")})
        notebooks.append(nb)
    exporter = _exporter()
    for i, (nb, page) in enumerate(zip(notebooks, pages)):
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": page["title"]}})
        m = re.search(r"<body[^>]*>", body)
        at = m.end() if m else 0
        body = body[:at] + _page_nav(pages, i) + body[at:]  # contents / previous / next links on top
        (out / page["href"]).write_text(body, encoding="utf-8")
    index = out / "index.html"
    index.write_text(_index_html(pages, profile), encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supersmall.book",
                                     description="Render the executed notebook series to static HTML pages.")
    parser.add_argument("--executed", default="runs/nb", help="folder of executed notebooks (make run's output)")
    parser.add_argument("--out", default="runs/book", help="where the pages and index.html go")
    args = parser.parse_args(argv)
    try:
        index = build_book(args.executed, args.out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
