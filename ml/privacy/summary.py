"""What de-identification removed from a post, by kind and count: never the removed text itself."""

from __future__ import annotations

import re
from collections import Counter

from ml.privacy.kinds import KINDS, placeholder

_PLACEHOLDER = re.compile("|".join(re.escape(placeholder(kind)) for kind in KINDS))


def redaction_counts(*texts: str) -> dict[str, int]:
    """Kind -> how many placeholders stand in the de-identified `texts` (title, body, ...).

    Read off the stored text itself, so a case read back later reports what its readers see. A
    placeholder the poster typed verbatim counts too: either way that part holds no identifier.
    """
    counts = Counter(match.group(0)[1:-1] for text in texts for match in _PLACEHOLDER.finditer(text))
    return dict(sorted(counts.items()))
