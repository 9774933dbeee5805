"""The book: executed notebooks -> static HTML pages + index (nothing heavy is executed)."""

import base64
import json
import re
import struct
import zlib
from pathlib import Path

import nbformat
import pytest

from supersmall.tools.book import (
    BookError,
    MathTally,
    build_book,
    latex_to_mathml,
    main,
    markdown_to_html,
    notebook_title,
)


def _png() -> str:
    """A valid 2x2 red PNG, base64-encoded as Jupyter stores it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


PNG = _png()


def _executed(folder, name="01_reward_design", title="01 · Reward design", seconds=12.34):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "tiny"\nsecret_default = "HIDE-ME"')
    params.metadata["tags"] = ["parameters"]
    code = nbformat.v4.new_code_cell("print('hello from the run')\nplot()")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello from the run\n"),
                    nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]
    code.execution_count = 1
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nSome context."), params, code]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / f"{name}.ipynb"))
    (folder / "summary.json").write_text(json.dumps(
        {"profile": "tiny", "results": [{"notebook": f"{name}.ipynb", "status": "ok", "seconds": seconds}]}))
    return folder


def test_build_book_renders_pages_and_index(tmp_path):
    executed = _executed(tmp_path / "nb")
    (executed / "01_reward_design").mkdir()  # a notebook's output folder is not a page
    (executed / "scratch.ipynb").write_text((executed / "01_reward_design.ipynb").read_text())  # not NN_
    index = build_book(executed, tmp_path / "book")
    assert index == tmp_path / "book" / "index.html"
    text = index.read_text()
    assert re.search(r'<a href="01_reward_design.html">01 · Reward design</a>', text)
    assert "12.3" in text and "tiny" in text and "scratch" not in text
    page = (tmp_path / "book" / "01_reward_design.html").read_text()
    assert "Reward design" in page and "hello from the run" in page
    assert re.search(r'<img[^>]+src="data:image/png;base64,' + re.escape(PNG[:40]), page)
    assert "HIDE-ME" not in page  # the parameters cell is hidden
    assert 'href="index.html"' in page


def test_pages_in_order_and_summary_optional(tmp_path):
    executed = _executed(tmp_path / "nb", "03_kl", "03 · KL removal")
    _executed(executed, "00_setup", "00 · Setup & tour")
    (executed / "summary.json").unlink()
    text = build_book(executed, tmp_path / "book").read_text()
    assert text.index("00_setup.html") < text.index("03_kl.html")


def test_title_falls_back_to_the_name():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("no heading\n\n## Second level")]
    assert notebook_title(nb, "07_x") == "Second level"
    assert notebook_title(nbformat.v4.new_notebook(), "07_x") == "07_x"


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])  # absent, or empty
def test_missing_executed_notebooks_name_make_run(tmp_path, make, capsys):
    with pytest.raises(BookError, match="run `make run` first"):
        build_book(make(tmp_path), tmp_path / "book")
    assert main(["--executed", str(make(tmp_path)), "--out", str(tmp_path / "book")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make run" in err


MATH_CELL = r"""## Math

Inline $x^2 + \frac{a}{b}$ and \(y_1\); it costs $5 or $10, and \$3 stays text.
A code span `$not math$` and `\(raw\)` stays code.

$$A_i = \frac{r_i - \bar r}{\sigma + \epsilon}$$

A broken one: $\frac{1}{$ and an unknown command $\nosuchcommand{x}$.
"""


def test_book_renders_math_as_mathml_without_network(tmp_path, capsys):
    executed = _executed(tmp_path / "nb")
    nb = nbformat.read(str(executed / "01_reward_design.ipynb"), as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(MATH_CELL))
    nbformat.write(nb, str(executed / "01_reward_design.ipynb"))
    build_book(executed, tmp_path / "book")
    page = (tmp_path / "book" / "01_reward_design.html").read_text()
    inline = re.findall(r'<math[^>]* display="inline"[^>]*>.*?</math>', page, re.S)
    block = re.findall(r'<math[^>]* display="block"[^>]*>.*?</math>', page, re.S)
    assert all('xmlns="http://www.w3.org/1998/Math/MathML"' in m for m in inline + block)
    assert len(inline) == 2 and "<msup><mi>x</mi><mn>2</mn></msup>" in inline[0] and "<mfrac>" in inline[0]
    assert len(block) == 1 and "<mfrac>" in block[0]
    assert "it costs $5 or $10, and $3 stays text." in page  # currency and an escaped \$ are not math
    assert "<code>$not math$</code>" in page and r"<code>\(raw\)</code>" in page
    # nothing is fetched: no script loads from anywhere, no CDN is named
    assert not re.search(r"<script[^>]*\bsrc\s*=", page), re.findall(r"<script[^>]*\bsrc[^>]*>", page)
    assert not re.search(r"cdnjs|unpkg|jsdelivr|mathjax/", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    # a formula latex2mathml cannot convert stays on the page as its source, and the build says so
    assert r'<span class="supersmall-math-source"' in page
    assert r"$\frac{1}{$" in page and r"$\nosuchcommand{x}$" in page
    err = capsys.readouterr().err
    assert "2 of 5 formulas could not be converted" in err and "01_reward_design" in err


def test_markdown_math_delimiters_and_failures():
    tally = MathTally()
    out = markdown_to_html("\\[ \\sqrt{2} \\]\n\nand $$\\left( x$$ and \\begin{equation}E = mc^2\\end{equation}",
                           tally)
    assert out.count('display="block"') == 2 and "<msqrt>" in out and "<msup><mi>c</mi><mn>2</mn></msup>" in out
    assert tally.converted == 2 and tally.failed == [r"$$\left( x$$"]
    assert latex_to_mathml("x}{") is None and latex_to_mathml("") is None
    assert 'display="block"' in latex_to_mathml(r"\sum_i x_i", display=True)


def test_every_formula_in_the_course_notebooks_converts():
    """The real notebooks' markdown: every formula becomes MathML, and no `$` is left over as text."""
    notebooks = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    tally = MathTally()
    stray = []
    for path in notebooks:
        for i, cell in enumerate(nbformat.read(str(path), as_version=4).cells):
            if cell.cell_type != "markdown":
                continue
            tally.where = f"{path.name} cell {i}"
            text = re.sub(r"<code.*?</code>|<pre.*?</pre>|<math.*?</math>", "",
                          markdown_to_html(cell.source, tally), flags=re.S)
            stray += [f"{tally.where}: {m}" for m in re.findall(r".{0,30}\$.{0,30}", text)]
    assert tally.failed == [], tally.failed
    assert stray == [], stray  # a formula the parser did not see would show as raw $...$
    assert tally.converted > 100
