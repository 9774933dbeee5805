"""Repository tooling, not library: nothing a notebook or a user's script imports.

- ``readme``: the README's figures table from a series' ``claims.json`` (``python -m supersmall.tools.readme``);
- ``layout``: the README's and CONTRIBUTING's layer tables from ``supersmall.LAYERS`` (``python -m supersmall.tools.layout``);
- ``book``: the executed series as a static HTML site (``make book``);
- ``tiny_build``: how the shipped tiny models were made (``supersmall tiny build``).
"""
