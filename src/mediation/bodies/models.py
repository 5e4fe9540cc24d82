from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, new_id


class BodyKind(StrEnum):
    mediation_center = "mediation_center"  # 矛盾纠纷调处中心: the window; its staff see its region
    people_mediation_committee = "people_mediation_committee"  # 人民调解委员会
    industry_mediation = "industry_mediation"  # 行业性专业性调解组织
    administrative_mediation = "administrative_mediation"  # 行政调解
    lawyer_mediation = "lawyer_mediation"  # 律师调解
    court_invited_mediation = "court_invited_mediation"  # 法院特邀调解组织
    court = "court"  # 人民法院 (handoff target)
    labour_arbitration_commission = "labour_arbitration_commission"  # 劳动人事争议仲裁委员会
    commercial_arbitration_commission = "commercial_arbitration_commission"  # 仲裁委员会
    rural_land_arbitration_commission = "rural_land_arbitration_commission"  # 农村土地承包仲裁委员会


MEDIATING_KINDS = frozenset(
    {
        BodyKind.people_mediation_committee,
        BodyKind.industry_mediation,
        BodyKind.administrative_mediation,
        BodyKind.lawyer_mediation,
        BodyKind.court_invited_mediation,
    }
)
ARBITRATION_KINDS = frozenset(
    {
        BodyKind.labour_arbitration_commission,
        BodyKind.commercial_arbitration_commission,
        BodyKind.rural_land_arbitration_commission,
    }
)


class Body(Base):
    __tablename__ = "bodies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    tier: Mapped[str] = mapped_column(String(10))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
