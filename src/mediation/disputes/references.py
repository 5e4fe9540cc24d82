"""The number a referring system gave a case (`external_reference`): how it is written, and whose
numbering it belongs to.

A 12345 platform's work order, a court's 诉前调 case number, a petition office's 信访 number and a
police report's number are each issued by one side in its own sequence; another county's platform
or another court may issue the same number for another dispute. One issuer's number registers one
case (a platform's retried push, or the same referral typed in twice), another issuer's never
collides with it.
"""

from __future__ import annotations

import uuid

from mediation.disputes.enums import Channel


def reference_scope(channel: str, region_code: str, inviting_court_id: uuid.UUID | None) -> str:
    """Whose numbering a case's reference belongs to, as far as the case records it: the court that
    delegated it (特邀调解: its own case number, 诉前调), else the county the case is registered in
    (the first six digits of its GB/T 2260 code, as its case number's). A county's 12345 platform,
    petition office and police bureau number their own cases; two counties' may issue the same
    number, and a city- or province-wide deployment registers both."""
    if channel == Channel.court_delegated and inviting_court_id is not None:
        return str(inviting_court_id)
    return region_code[:6]
