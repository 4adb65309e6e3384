"""function_app's functions as the Functions host indexes them: once per process, as the host does.

`FunctionApp.get_functions()` records every name it returns and refuses a second call in the same process
("does not have a unique function name"), so every test reads this one index.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def indexed_functions() -> dict[str, Any]:
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}
