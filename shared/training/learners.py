"""The learners the AutoML search may use, and how a searched config becomes a fresh estimator.

FLAML searches; we rebuild each chosen config as the plain library estimator on our own matrix,
so the saved model depends on LightGBM, XGBoost or scikit-learn only, never on FLAML.
"""

from __future__ import annotations

from typing import Any

from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

LEARNERS: tuple[str, ...] = ("lgbm", "xgboost", "rf", "extra_tree", "lrl1")
LEARNER_NAMES = {
    "lgbm": "LightGBM",
    "xgboost": "XGBoost",
    "rf": "RandomForest",
    "extra_tree": "ExtraTrees",
    "lrl1": "LogisticRegression",
}


def _flaml_class(learner: str) -> Any:
    from flaml.automl import model as flaml_model

    classes = {
        "lgbm": flaml_model.LGBMEstimator,
        "xgboost": flaml_model.XGBoostSklearnEstimator,
        "rf": flaml_model.RandomForestEstimator,
        "extra_tree": flaml_model.ExtraTreesEstimator,
        "lrl1": flaml_model.LRL1Classifier,
    }
    if learner not in classes:
        raise ValueError(f"unknown learner {learner!r}; choose from {', '.join(LEARNERS)}")
    return classes[learner]


def build_estimator(learner: str, config: dict[str, Any], *, seed: int, n_jobs: int = -1) -> Any:
    """A new, unfitted estimator of the library itself for a FLAML config."""
    from flaml.automl.task.factory import task_factory

    wrapper = _flaml_class(learner)(task=task_factory("binary"), **config)
    params = dict(wrapper.params)
    if "n_jobs" in wrapper.estimator_class().get_params():
        params["n_jobs"] = n_jobs
    if "random_state" in wrapper.estimator_class().get_params():
        params["random_state"] = seed
    estimator = wrapper.estimator_class(**params)
    if learner == "lrl1":
        # Linear models need scaled inputs and no NaN (unseen categories); trees do not.
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), estimator)
    return estimator
