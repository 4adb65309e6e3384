"""The bank marketing record: the 20 input features, their types, and the target.

One place names the columns so that validation, featurization, the scoring contract and the
docs cannot drift apart.
"""

from __future__ import annotations

from typing import Final, Literal

TARGET: Final = "y"
POSITIVE: Final = "yes"
NEGATIVE: Final = "no"
CLASSES: Final = (NEGATIVE, POSITIVE)

INTEGER_FEATURES: Final = ("age", "duration", "campaign", "pdays", "previous")
FLOAT_FEATURES: Final = (
    "emp.var.rate",
    "cons.price.idx",
    "cons.conf.idx",
    "euribor3m",
    "nr.employed",
)
CATEGORICAL_FEATURES: Final = (
    "job",
    "marital",
    "education",
    "default",
    "housing",
    "loan",
    "contact",
    "month",
    "day_of_week",
    "poutcome",
)
NUMERIC_FEATURES: Final = INTEGER_FEATURES + FLOAT_FEATURES

# The column order of the shipped CSV, which is also the order clients send.
FEATURES: Final = (
    "age",
    "job",
    "marital",
    "education",
    "default",
    "housing",
    "loan",
    "contact",
    "month",
    "day_of_week",
    "duration",
    "campaign",
    "pdays",
    "previous",
    "poutcome",
    "emp.var.rate",
    "cons.price.idx",
    "cons.conf.idx",
    "euribor3m",
    "nr.employed",
)
COLUMNS: Final = (*FEATURES, TARGET)

# Known only once the call has ended: a model meant for use before calling must leave it out.
LEAKY_FEATURES: Final = ("duration",)

FeatureKind = Literal["integer", "float", "categorical"]


def kind_of(feature: str) -> FeatureKind:
    """The type a feature's values must have."""
    if feature in INTEGER_FEATURES:
        return "integer"
    if feature in FLOAT_FEATURES:
        return "float"
    if feature in CATEGORICAL_FEATURES:
        return "categorical"
    raise KeyError(f"unknown feature {feature!r}; the features are: {', '.join(FEATURES)}")
