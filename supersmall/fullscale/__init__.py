"""Full scale: what only notebook 07 and the CLI use (``supersmall estimate / canary / replicate``).

- ``launch``: the paper's runs as plans, ``replicate`` (which runs them), accelerate / vLLM command lines;
- ``canary``: a few measured steps of every planned run first, and a go / no-go;
- ``estimate``: the memory model and the per-run time model; ``cost``: the whole replication beside Table 5;
- ``gpus``: GPU checks (free, NVLink) and one job per GPU; ``model_shape``: a model's dimensions.
"""
