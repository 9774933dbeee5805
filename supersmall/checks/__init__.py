"""Exercise checks: ``from supersmall.checks import check_extract_answer`` etc.

The machinery is in :mod:`supersmall.checks.core`; each topic module adds ``check_<name>(fn)``
functions, collected here so notebooks import them from one place.
"""

from supersmall.checks.core import NOT_IMPLEMENTED, Case, CheckFailed, close, run_check
from supersmall.checks.predict import predict, verdict_choice

__all__ = ["NOT_IMPLEMENTED", "Case", "CheckFailed", "close", "run_check", "predict", "verdict_choice"]

# Topic modules register their checks here (one import line each).
for _topic in ("setup", "rewards", "advantages", "losses", "curriculum", "grpo", "evaluation", "report"):
    try:
        _mod = __import__(f"supersmall.checks.{_topic}", fromlist=["*"])
    except ModuleNotFoundError as _e:  # topic not written yet
        if _e.name != f"supersmall.checks.{_topic}":
            raise
        continue
    for _name in dir(_mod):
        if _name.startswith("check_"):
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
