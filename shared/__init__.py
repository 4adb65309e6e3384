"""bankops: hands-off AutoML, registry, serving and retraining for the bank marketing data.

Everything with logic lives in this package; `functions/` only adapts Azure Functions triggers
to it. Nothing here imports `azure.functions`.
"""

__version__ = "0.1.0"
