"""The naive batch path, as a user would write it: pandas read_csv, the MLflow pyfunc model, to_csv.

    python bench/naive_batch.py TRACKING_URI MODEL_URI INPUT.csv OUTPUT.csv VERSION

Run by bench/batch_bench.py as a whole process (its imports included); prints the wall-clock
time of each step as JSON.
"""

import json
import sys
import time

entered = time.time()
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

tracking_uri, model_uri, source, output, version = sys.argv[1:6]
imported = time.time()
mlflow.set_tracking_uri(tracking_uri)
model = mlflow.pyfunc.load_model(model_uri)
loaded = time.time()
frame = pd.read_csv(source)
read = time.time()
scored = model.predict(frame)
predicted = time.time()
out = pd.concat([frame, scored], axis=1)
out["model_version"] = version
out.to_csv(output, index=False)
print(json.dumps({"entered": entered, "imported": imported, "loaded": loaded, "read": read, "predicted": predicted,
                  "written": time.time()}))
