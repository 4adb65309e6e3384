"""The real-time scoring service (local backend): FastAPI on uvicorn, Azure ML's scoring contract.

contract.py   the typed record, both request shapes, errors, OpenAPI schemas
openapi.py    the OpenAPI 3.0 document and the Swagger UI page (local assets)
keys.py       primary/secondary/function keys: store, rotation, constant-time check
predictor.py  a blend compiled for the hot path (direct booster calls, verified at load)
served.py     one loaded, compiled, warmed model version
deployment.py the files under $BANKOPS_HOME/serving: deployment, workers' reports, server
watcher.py    each worker's model slot, following the deployment file, swapping atomically
deployer.py   the Deployer port: deploy with no downtime, smoke test
app.py        the FastAPI app of one worker
runner.py     `bankops serve`: pick the version, make the keys, run the workers
client.py     a small client (test-endpoint, smoke tests)
bench.py      `bankops bench`: a bounded loopback load test
"""
