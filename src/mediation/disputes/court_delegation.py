"""Court-delegated mediation (特邀调解): which cases a court delegated, and when.

One predicate says whether a case is court-delegated. The parties' consent before mediation begins
(特邀调解规定 Art. 11), the court's mediation period (Art. 27) and the court competent to confirm
the agreement (民事诉讼法 Art. 205 item 1) all read it, so they never disagree about a case.
"""

from __future__ import annotations

import uuid

from mediation.disputes.enums import Channel


def is_court_delegated(channel: str | None, inviting_court_id: uuid.UUID | None) -> bool:
    """A case a court delegated: it names the court that invited the mediation, whatever channel
    it was registered by (a party may bring the court's referral to the window), or it came by
    the court channel."""
    return inviting_court_id is not None or channel == Channel.court_delegated
