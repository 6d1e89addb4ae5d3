"""angioseg: vessel, catheter and lesion segmentation in X-ray angiography videos."""

from angioseg.errors import InputError
from angioseg.types import DEFAULT_LABELS, LabelMap, Video

__version__ = "0.1.0"

__all__ = ["DEFAULT_LABELS", "InputError", "LabelMap", "Video", "__version__"]
