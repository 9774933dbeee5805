"""The book: executed notebooks -> static HTML pages + index (nothing heavy is executed)."""

import base64
import json
import re
import struct
import zlib

import nbformat
import pytest

from supersmall.book import BookError, build_book, main, notebook_title


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
