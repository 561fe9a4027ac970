"""CS231n's ``cs231n.vis_utils``: re-exports ``nndl.vis_utils``."""

from ..vis_utils import *  # noqa: F401,F403
from ..vis_utils import __all__  # noqa: F401
