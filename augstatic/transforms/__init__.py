"""Transform classes by family; importing this package registers every transform."""

from augstatic.transforms import blur  # noqa: F401  (registers)
from augstatic.transforms import color  # noqa: F401
from augstatic.transforms import dropout  # noqa: F401
from augstatic.transforms import geometric  # noqa: F401
from augstatic.transforms import noise  # noqa: F401
from augstatic.transforms import pixel  # noqa: F401
from augstatic.transforms import policy_ops  # noqa: F401
