"""The training pipeline: split, AutoML search, ensemble, evaluation, plots."""
