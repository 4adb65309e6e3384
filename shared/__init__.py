"""bankops: hands-off AutoML, registry, serving and retraining for the bank marketing data.

Everything with logic lives in this package; `functions/` only adapts Azure Functions triggers
to it. Nothing here imports `azure.functions`.
"""

import os

from shared.openmp import openmp_environment

__version__ = "0.1.0"

# How the boosters' OpenMP threads wait, decided before any of them loads (see shared/openmp.py).
os.environ.update(openmp_environment())
