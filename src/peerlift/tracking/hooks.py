"""What other domains hear of questionnaires, in the same transaction as the response.

``ALERT_RAISED`` is called once per alert of a stored response, ``FREE_TEXT_ANSWERED`` once per
non-empty free-text answer (the safety escalation registers itself here). A module of its own, with
no imports of the domains, so that registering a hook never imports the tracking service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from peerlift.identity.models import User
    from peerlift.tracking.models import QuestionnaireResponse

ALERT_RAISED: list[Callable[[Session, User, QuestionnaireResponse, str], None]] = []
FREE_TEXT_ANSWERED: list[Callable[[Session, User, QuestionnaireResponse, str], None]] = []
