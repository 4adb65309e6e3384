"""Without `duration` the blend tries the fixed configs measured on the harder pre-call task."""

from __future__ import annotations

from shared import schema
from shared.training.automl import candidates
from shared.training.learners import PORTFOLIO, PRE_CALL_PORTFOLIO, portfolio_for
from shared.training.search import SearchResult, Trial


def _search() -> SearchResult:
    trial = Trial(1, "lgbm", {"n_estimators": 10, "num_leaves": 4}, 0.8, 0.1, 0.1)
    return SearchResult(trials=[trial], best_config={"lgbm": trial.config}, best_score={"lgbm": 0.8}, greater_is_better=True)


def test_a_matrix_without_duration_gets_the_pre_call_portfolio() -> None:
    pre_call = [c for c in schema.FEATURES if c not in schema.LEAKY_FEATURES]
    assert portfolio_for(pre_call) == PRE_CALL_PORTFOLIO
    assert portfolio_for(list(schema.FEATURES)) == PORTFOLIO
    tried = candidates(_search(), fixed=portfolio_for(pre_call))
    # the searched winner first (its time is known), then the pre-call configs in their order
    assert [c.name for c in tried] == ["lgbm", "lgbm-fixed", "catboost-fixed", "xgboost-fixed"]
    catboost = next(c for c in tried if c.name == "catboost-fixed")
    assert catboost.config["depth"] < dict(PORTFOLIO)["catboost"]["depth"]  # shallower, more regularised trees


def test_a_matrix_with_duration_keeps_the_measured_portfolio() -> None:
    tried = candidates(_search(), fixed=portfolio_for(list(schema.FEATURES)))
    assert [c.name for c in tried] == ["lgbm", "xgboost-fixed", "catboost-fixed", "lgbm-fixed"]
    assert [c.config for c in tried[1:]] == [params for _, params in PORTFOLIO]
