"""``eval "$(python -m flows)"``: the environment defaults (flows/__init__.py) as shell exports."""

import os
import shlex

from flows import DEFAULTS

print("\n".join(f"export {key}={shlex.quote(os.environ[key])}" for key in DEFAULTS))
