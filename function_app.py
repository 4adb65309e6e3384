"""Azure Functions entry point (Python v2 programming model): wiring only.

Each module in functions/ holds one Blueprint of thin triggers; all logic lives in shared/.
"""

import azure.functions as func

from shared.openmp import apply_openmp_environment

apply_openmp_environment()  # before the triggers' modules can import a booster

from functions import daily_retrain, http_api, on_data_arrived, on_run_completed, process_work

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for module in (http_api, on_data_arrived, on_run_completed, daily_retrain, process_work):
    app.register_functions(module.bp)
