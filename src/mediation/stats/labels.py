"""Names of the codes the statistics count, in both languages."""

from __future__ import annotations

from collections.abc import Mapping

from mediation.core.i18n import Text
from mediation.disputes.enums import CATEGORY_LABELS, Category, Channel, Tier
from mediation.disputes.lifecycle import STATUS_LABELS, Status

CATEGORY_EN: Mapping[Category, str] = {
    Category.marriage_family: "Marriage and family",
    Category.neighbour: "Neighbours",
    Category.housing_homestead: "Housing and homesteads",
    Category.contract: "Contracts",
    Category.business_operation: "Business operations",
    Category.damages: "Damages",
    Category.land_forest: "Land and forests",
    Category.expropriation_demolition: "Land expropriation and demolition",
    Category.environment: "Environmental pollution",
    Category.labour: "Labour",
    Category.consumer: "Consumer",
    Category.medical: "Medical",
    Category.traffic_accident: "Road traffic accidents",
    Category.property_management: "Property management",
    Category.debt: "Debts",
    Category.other: "Other",
}
CATEGORY: Mapping[str, Text] = {c.value: Text(CATEGORY_LABELS[c], CATEGORY_EN[c]) for c in Category}
STATUS: Mapping[str, Text] = {s.value: STATUS_LABELS[s] for s in Status}
CHANNEL: Mapping[str, Text] = {
    Channel.window: Text("窗口", "Window"),
    Channel.online: Text("网上", "Online"),
    Channel.grid: Text("网格员上报", "Grid worker report"),
    Channel.hotline: Text("12345 热线", "12345 hotline"),
    Channel.petition: Text("信访转办", "Petition office"),
    Channel.court_delegated: Text("法院委派", "Court-delegated"),
    Channel.police: Text("公安移交", "Police"),
}
TIER: Mapping[str, Text] = {
    Tier.village: Text("村(社区)", "Village"),
    Tier.town: Text("乡镇(街道)", "Town"),
    Tier.county: Text("县(区)", "County"),
    Tier.city: Text("市", "City"),
}
MEDIATION_RESULT: Mapping[str, Text] = {
    "agreement": Text("达成协议", "Agreement"),
    "failed": Text("调解不成", "Failed"),
    "withdrawn": Text("调解中撤回", "Withdrawn while mediating"),
}
CONFIRMATION_RESULT: Mapping[str, Text] = {
    "confirmed": Text("确认有效", "Confirmed"),
    "rejected": Text("驳回申请", "Rejected"),
    "not_accepted": Text("不予受理", "Not accepted"),
    "withdrawn": Text("撤回申请", "Withdrawn"),
}
NO_BODY = Text("未分流到调解组织", "Not with a body")
SATISFACTION = Text("{score} 分", "{score} of 5")
