"""The streamrec CDK app: settings, the stack and one construct per concern."""

import sys
from pathlib import Path

# The CDK code imports `streamrec_core.constants` exactly as the functions do (layout rule).
_LAMBDAS = str(Path(__file__).resolve().parents[1] / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
