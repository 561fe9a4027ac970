"""CS231n's ``cs231n.gradient_check``: re-exports ``nndl.gradient_check``."""

from ..gradient_check import *  # noqa: F401,F403
from ..gradient_check import __all__  # noqa: F401
