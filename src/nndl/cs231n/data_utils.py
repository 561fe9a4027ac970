"""CS231n's ``cs231n.data_utils``: re-exports ``nndl.data_utils``."""

from ..data_utils import *  # noqa: F401,F403
from ..data_utils import __all__  # noqa: F401
