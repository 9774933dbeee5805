"""Exercise checks: ``from supersmall.checks import check_extract_answer`` etc.

The machinery is in :mod:`supersmall.checks.core`; each topic module (one per course notebook) writes
``check_<name>(fn)`` functions, imported here so notebooks import them from one place. A new check is
one name added to its topic's import line and to ``__all__``.

The course's own grading lives here too, beside the checks: :func:`grade_verdict` (a written verdict against
the evidence, notebook 09), :func:`supersmall.checks.kl_gradients` (what each KL estimator's gradient follows, notebook 03) and
:func:`check_against_trl` (the minimal loop against TRL on one batch, notebooks 00 and 05).
"""

from supersmall.checks.advantages import check_group_advantages
from supersmall.checks.capstone import check_seeds_needed, check_verdict_text
from supersmall.checks.core import NOT_IMPLEMENTED, Case, CheckFailed, close, run_check
from supersmall.checks.curriculum import (
    check_balanced_levels,
    check_cumulative_levels,
    check_cumulative_shares,
    check_difficulty_level,
)
from supersmall.checks.evaluation import check_paired_test, check_wilson_interval
from supersmall.checks.grpo import check_grpo_step, check_logp_gradient
from supersmall.checks.kl_gradients import (
    KL_GRADIENT_TARGETS,
    KLGradients,
    kl_gradients,
    sequence_kl_gradients,
)
from supersmall.checks.losses import check_k3, check_masked_surrogate
from supersmall.checks.predict import predict, verdict_choice
from supersmall.checks.report import check_verdict
from supersmall.checks.rewards import check_extract_answer, check_length_penalty, check_supersmall_reward
from supersmall.checks.scratch import check_grpo_loop, check_mask_after_eos, check_sequence_logps
from supersmall.checks.setup import check_pass_at_1
from supersmall.checks.trl_equality import check_against_trl
from supersmall.checks.verdicts import grade_verdict

__all__ = [
    "NOT_IMPLEMENTED", "Case", "CheckFailed", "close", "run_check", "predict", "verdict_choice",
    "check_pass_at_1",  # setup
    "check_extract_answer", "check_length_penalty", "check_supersmall_reward",  # rewards
    "check_group_advantages",  # advantages
    "check_k3", "check_masked_surrogate",  # losses
    "check_difficulty_level", "check_cumulative_levels", "check_balanced_levels", "check_cumulative_shares",  # curriculum
    "check_grpo_step", "check_logp_gradient",  # grpo
    "check_sequence_logps", "check_grpo_loop", "check_mask_after_eos",  # scratch (exercise 00: GRPO from scratch)
    "check_wilson_interval", "check_paired_test",  # evaluation
    "check_verdict",  # report
    "check_seeds_needed", "check_verdict_text",  # capstone
    "grade_verdict", "kl_gradients", "sequence_kl_gradients", "KLGradients", "KL_GRADIENT_TARGETS", "check_against_trl",  # course grading
]
