"""bankops: hands-off AutoML, registry, serving and retraining for the bank marketing data.

Everything with logic lives in this package; `functions/` only adapts Azure Functions triggers
to it. Nothing here imports `azure.functions`. Importing it does nothing else: process-wide settings
(the OpenMP wait policy) are applied by each entry point (`shared.openmp.apply_openmp_environment`).
"""

__version__ = "0.1.0"
