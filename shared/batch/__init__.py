"""Batch scoring: rank a client list of any length with a registered model, in bounded memory.

source (CSV in chunks of whole lines) -> validate (per-row checks from the schema) -> scorer
(encode and predict) -> sink (CSV out, atomically) ; ranking keeps the top K ; job ties them
together as one plain function of (model, input stream, output stream) ; blob runs it on the
datastore's `batch` container and records the run.
"""
