"""The executed notebook series as a static book: one HTML page per notebook plus an index.

    make run && make book                    # runs/nb/*.ipynb -> runs/book/index.html
    python -m supersmall.tools.book --executed runs/nb --out runs/book

or, from Python::

    from supersmall.tools.book import build_book
    index = build_book("runs/nb", "runs/book")

Each executed notebook (``NN_name.ipynb``, as ``supersmall notebooks run --out runs/nb`` writes them)
becomes ``NN_name.html`` with nbconvert's ``HTMLExporter``: outputs and figures are embedded (PNG
as base64 data), so a page is one self-contained file. The ``parameters`` cell and the one papermill
injects are left out. ``index.html`` lists the pages in order with each notebook's title (its first
markdown heading), its status and seconds from ``summary.json`` when the runner left one.

The pages need no network: the LaTeX of markdown cells (``$...$``, ``\\(...\\)``, ``$$...$$``,
``\\[...\\]``, ``\\begin{env}...\\end{env}``) is turned into MathML at build time with ``latex2mathml``,
which browsers render natively, and nbconvert's CDN scripts (MathJax, require.js, mermaid, the widget
manager) are left out. A formula that cannot be converted stays on the page as its LaTeX source, and the
build says how many did on stderr. ``$`` opens math only before a non-space and closes it only after a
non-space and not before a digit (pandoc's rule), so "$5 or $10" and an escaped ``\\$`` stay text.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from dataclasses import dataclass, field
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


@dataclass
class MathTally:
    """How many formulas became MathML, and the source of each one that could not (``where: $tex$``)."""

    converted: int = 0
    failed: list[str] = field(default_factory=list)
    where: str = ""


# A command latex2mathml does not know comes out as <mi>\foo</mi>: that is a failure too.
_UNKNOWN_COMMAND = re.compile(r">\\[A-Za-z]+")


def _braces_balanced(tex: str) -> bool:
    depth = 0
    for brace in re.sub(r"\\.", "", tex):  # \{ and \} are literal braces
        depth += {"{": 1, "}": -1}.get(brace, 0)
        if depth < 0:
            return False
    return depth == 0


def latex_to_mathml(tex: str, display: bool = False) -> str | None:
    """``tex`` (no delimiters) as a ``<math>`` element, or None when latex2mathml cannot convert it."""
    from latex2mathml.converter import convert

    if not tex.strip() or not _braces_balanced(tex):
        return None
    try:
        mathml = convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # latex2mathml's own errors, and IndexError & co. on some malformed input
        return None
    return None if _UNKNOWN_COMMAND.search(mathml) else mathml


def _math_parsers():
    """nbconvert's math-aware mistune parsers, with pandoc's rule for ``$`` and single-backslash delimiters."""
    from nbconvert.filters.markdown_mistune import MathBlockParser, MathInlineParser

    def _dotall(pattern: str) -> str:
        return f"(?s:{pattern})"

    class BlockParser(MathBlockParser):
        SPECIFICATION = {**MathBlockParser.SPECIFICATION, "multiline_math": _dotall(
            r"(?<!\\)[$]{2}.*?(?<!\\)[$]{2}"
            r"|\\{1,2}\[.*?\\{1,2}\]"
            r"|\\begin\{(?P<math_env_name>[a-z]*\*?)\}.*?\\end\{(?P=math_env_name)\}")}

    class InlineParser(MathInlineParser):
        SPECIFICATION = {
            **MathInlineParser.SPECIFICATION,
            "block_math_latex": _dotall(r"(?<!\\)\\{1,2}\[(?P<math_block_latex>.*?)(?<!\\)\\{1,2}\]"),
            # opens before a non-space, closes after a non-space and not before a digit; no ` inside,
            # so a code span after a lone "$5" stays a code span
            "inline_math_tex": _dotall(r"(?<![$\\])\$(?P<math_inline_tex>(?![\s$])(?:\\.|[^$`\\])+?)"
                                       r"(?<!\s)\$(?!\d)"),
            "inline_math_latex": _dotall(r"(?<!\\)\\{1,2}\((?P<math_inline_latex>.*?)(?<!\\)\\{1,2}\)"),
        }

    return BlockParser(), InlineParser(hard_wrap=False)


def _renderer(tally: MathTally, **kwargs: Any):
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        def _math(self, tex: str, display: bool, source: str) -> str:
            mathml = latex_to_mathml(tex, display)
            if mathml is not None:
                tally.converted += 1
                return mathml
            tally.failed.append(f"{tally.where}: {source}" if tally.where else source)
            block = ' style="display:block"' if display else ""  # a span: block math sits inside a <p>
            return (f'<span class="supersmall-math-source"{block} title="LaTeX that could not be converted to '
                    f'MathML">{self.escape_html(source)}</span>')

        def inline_math(self, body: str) -> str:
            return self._math(body, False, f"${body}$")

        def block_math(self, body: str) -> str:
            return self._math(body, True, f"$${body}$$")

        def latex_environment(self, name: str, body: str) -> str:
            source = f"\\begin{{{name}}}{body}\\end{{{name}}}"
            return self._math(source, True, source)

    return MathMLRenderer(escape=False, **kwargs)


def markdown_to_html(source: str, tally: MathTally | None = None, **renderer_options: Any) -> str:
    """A markdown cell's HTML as the book renders it: nbconvert's markdown, its math as MathML."""
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    block, inline = _math_parsers()
    renderer = _renderer(tally if tally is not None else MathTally(), **renderer_options)
    return MarkdownWithMath(renderer=renderer, block=block, inline=inline).render(source)


# The lab template less every script it loads from a CDN (MathJax, require.js, mermaid, the widget manager).
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}
<style type="text/css">
math { font-family: "Latin Modern Math", "STIX Two Math", "Cambria Math", "DejaVu Math TeX Gyre", math; }
math[display="block"] { margin: 0.8em 0; overflow-x: auto; overflow-y: hidden; }
.supersmall-math-source { font-family: var(--jp-code-font-family, monospace); color: #9a3412; }
</style>
{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


def _exporter(tally: MathTally):
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    class BookExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):  # as HTMLExporter.markdown2html, with MathML math
            cell = context.get("cell", {})
            path = context.get("resources", {}).get("metadata", {}).get("path", "")
            return markdown_to_html(source, tally, attachments=cell.get("attachments", {}),
                                    embed_images=self.embed_images, path=path,
                                    anchor_link_text=self.anchor_link_text,
                                    exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)

    # the "lab" template: CSS inline, images as data URIs
    exporter = BookExporter(extra_loaders=[DictLoader({"supersmall_book.html.j2": _TEMPLATE})],
                            template_file="supersmall_book.html.j2")
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
    tally = MathTally()
    exporter = _exporter(tally)
    for i, (nb, page) in enumerate(zip(notebooks, pages)):
        tally.where = page["href"][:-len(".html")]
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": page["title"]}})
        m = re.search(r"<body[^>]*>", body)
        at = m.end() if m else 0
        body = body[:at] + _page_nav(pages, i) + body[at:]  # contents / previous / next links on top
        (out / page["href"]).write_text(body, encoding="utf-8")
    index = out / "index.html"
    index.write_text(_index_html(pages, profile), encoding="utf-8")
    if tally.failed:
        shown = "; ".join(tally.failed[:5]) + ("; ..." if len(tally.failed) > 5 else "")
        print(f"book: {len(tally.failed)} of {tally.converted + len(tally.failed)} formulas could not be "
              f"converted to MathML and are shown as LaTeX source: {shown}", file=sys.stderr)
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supersmall.tools.book",
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
