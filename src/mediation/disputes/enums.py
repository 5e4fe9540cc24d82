"""Code lists of the dispute domain (domain.md §2, §5). Values are stable API identifiers."""

from __future__ import annotations

from enum import StrEnum

from mediation.core.i18n import Text


class Category(StrEnum):
    marriage_family = "marriage_family"  # 婚姻家庭
    neighbour = "neighbour"  # 邻里
    housing_homestead = "housing_homestead"  # 房屋宅基地
    contract = "contract"  # 合同
    business_operation = "business_operation"  # 生产经营
    damages = "damages"  # 损害赔偿
    land_forest = "land_forest"  # 山林土地
    expropriation_demolition = "expropriation_demolition"  # 征地拆迁
    environment = "environment"  # 环境污染
    labour = "labour"  # 劳动争议
    consumer = "consumer"  # 消费
    medical = "medical"  # 医疗
    traffic_accident = "traffic_accident"  # 道路交通事故
    property_management = "property_management"  # 物业
    debt = "debt"  # 债务
    other = "other"  # 其他


CATEGORY_LABELS = {
    Category.marriage_family: "婚姻家庭",
    Category.neighbour: "邻里",
    Category.housing_homestead: "房屋宅基地",
    Category.contract: "合同",
    Category.business_operation: "生产经营",
    Category.damages: "损害赔偿",
    Category.land_forest: "山林土地",
    Category.expropriation_demolition: "征地拆迁",
    Category.environment: "环境污染",
    Category.labour: "劳动争议",
    Category.consumer: "消费",
    Category.medical: "医疗",
    Category.traffic_accident: "道路交通事故",
    Category.property_management: "物业",
    Category.debt: "债务",
    Category.other: "其他",
}


class SubjectMatter(StrEnum):
    """What the dispute is about, where the law treats it specially (仲裁法 Art. 3; 民诉法解释 Art. 355)."""

    marriage = "marriage"  # 婚姻
    adoption = "adoption"  # 收养
    guardianship = "guardianship"  # 监护
    support = "support"  # 扶养/抚养/赡养
    inheritance = "inheritance"  # 继承
    administrative = "administrative"  # 行政争议
    personal_status = "personal_status"  # 婚姻、亲子、收养等身份关系的确认
    property_ownership = "property_ownership"  # 物权确权
    ip_ownership = "ip_ownership"  # 知识产权确权
    special_procedure = "special_procedure"  # 特别程序、公示催告、破产程序
    outside_court_scope = "outside_court_scope"  # 不属于人民法院受理范围


class Channel(StrEnum):
    window = "window"  # 窗口
    online = "online"  # 网上
    grid = "grid"  # 网格员上报
    hotline = "hotline"  # 12345 热线
    petition = "petition"  # 信访转办
    court_delegated = "court_delegated"  # 法院委派
    police = "police"  # 公安移交


class CourtStage(StrEnum):
    """When in its case the court delegated the mediation: 特邀调解规定 Art. 27 sets the period by it
    (thirty days before filing; after filing fifteen under the ordinary procedure, seven under the
    simple one; longer only by the parties' agreement)."""

    pre_filing = "pre_filing"  # 立案前委派调解
    after_filing_ordinary = "after_filing_ordinary"  # 立案后委托调解, 适用普通程序
    after_filing_simple = "after_filing_simple"  # 立案后委托调解, 适用简易程序


class Severity(StrEnum):
    ordinary = "ordinary"  # 一般
    major = "major"  # 较大
    serious = "serious"  # 重大


class Complexity(StrEnum):
    """The clerk's judgement at intake; the center's handling deadlines follow it (domain.md §4.4)."""

    simple = "simple"  # 简易
    general = "general"  # 一般
    complex = "complex"  # 疑难复杂


class Tier(StrEnum):
    village = "village"  # 村/社区
    town = "town"  # 乡镇/街道
    county = "county"  # 县/区
    city = "city"  # 市

    def next(self) -> Tier | None:
        order = list(Tier)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None


class PartyRole(StrEnum):
    applicant = "applicant"  # 申请人
    respondent = "respondent"  # 被申请人
    third_party = "third_party"  # 第三人
    agent = "agent"  # 代理人


# As the center's papers, pages and messages name each role (domain.md §2).
PARTY_ROLE_NAMES: dict[str, Text] = {
    PartyRole.applicant: Text("申请人", "applicant"),
    PartyRole.respondent: Text("被申请人", "respondent"),
    PartyRole.third_party: Text("第三人", "third party"),
    PartyRole.agent: Text("代理人", "agent"),
}
# The printed papers are in Chinese.
PARTY_ROLE_LABELS: dict[str, str] = {role: name.zh for role, name in PARTY_ROLE_NAMES.items()}


class PartyKind(StrEnum):
    person = "person"
    organisation = "organisation"


class IdType(StrEnum):
    resident_id = "resident_id"  # 居民身份证
    uscc = "uscc"  # 统一社会信用代码
    passport = "passport"
    hk_macao_permit = "hk_macao_permit"  # 港澳居民来往内地通行证
    taiwan_permit = "taiwan_permit"  # 台湾居民来往大陆通行证
    hmt_residence_permit = "hmt_residence_permit"  # 港澳台居民居住证
    foreign_permanent_residence = "foreign_permanent_residence"  # 外国人永久居留身份证
    other = "other"


class Consent(StrEnum):
    unknown = "unknown"
    given = "given"
    refused = "refused"


class TerminationReason(StrEnum):
    """Why mediation ended without agreement (特邀调解规定 Art. 26; 人民调解法 Art. 26)."""

    party_refused = "party_refused"  # 当事人撤回或拒绝调解/要求终止
    positions_too_far_apart = "positions_too_far_apart"  # 分歧较大难以达成协议
    deadline_passed = "deadline_passed"  # 期限届满未达成协议且未延期
    party_unreachable = "party_unreachable"  # 当事人无法联系
    party_refused_to_sign = "party_refused_to_sign"  # 当事人拒绝签署协议
    other = "other"


class DeclineAdvice(StrEnum):
    """Where a matter that cannot be mediated here should go instead."""

    court = "court"
    police = "police"
    administrative_review = "administrative_review"
    arbitration = "arbitration"
    petition = "petition"
    other_department = "other_department"


# Each route as the party is told it (the notice of non-acceptance, the case page, the status
# lookup): its name, and what it means for someone who is not a lawyer. Only what the route is;
# whether a given claim is in time there is for the court, commission or authority to judge.
DECLINE_ADVICE_NAMES: dict[DeclineAdvice, Text] = {
    DeclineAdvice.court: Text("向人民法院起诉", "sue in a people's court"),
    DeclineAdvice.police: Text("向公安机关报案", "report to the police"),
    DeclineAdvice.administrative_review: Text("申请行政复议", "apply for administrative review"),
    DeclineAdvice.arbitration: Text("申请仲裁", "apply for arbitration"),
    DeclineAdvice.petition: Text("信访渠道", "petition (信访)"),
    DeclineAdvice.other_department: Text("其他职能部门", "another competent department"),
}
DECLINE_ADVICE_MEANINGS: dict[DeclineAdvice, Text] = {
    DeclineAdvice.court: Text(
        "可以向有管辖权的人民法院提起诉讼, 由人民法院依法审理。",
        "You may bring a suit in the people's court that has jurisdiction.",
    ),
    DeclineAdvice.police: Text(
        "涉及治安案件或者刑事案件的, 可以向当地公安机关 (派出所) 报案, 由公安机关依法处理。",
        "A public-security or criminal matter may be reported to the local police, who deal with it.",
    ),
    DeclineAdvice.administrative_review: Text(
        "对行政机关作出的行政行为不服的, 可以依法向行政复议机关申请行政复议。",
        "If you object to an act of an administrative authority, you may apply for administrative review.",
    ),
    # 仲裁法 Art. 4, 16: commercial arbitration needs a written arbitration agreement.
    DeclineAdvice.arbitration: Text(
        "劳动人事争议可以向劳动人事争议仲裁委员会申请仲裁; 农村土地承包经营纠纷可以向农村土地承包仲裁委员会"
        "申请仲裁; 当事人订有书面仲裁协议的, 可以向协议选定的仲裁委员会申请仲裁 (仲裁法第四条、第十六条)。",
        "A labour dispute goes to the labour dispute arbitration commission, a rural land-contract "
        "dispute to the rural land-contract arbitration commission; with a written arbitration "
        "agreement, to the commission it chose (仲裁法 Art. 4, 16).",
    ),
    DeclineAdvice.petition: Text(
        "可以依照《信访工作条例》, 向有关机关的信访工作机构反映情况、提出意见或者投诉请求。",
        "You may raise the matter with the petition office of the authority concerned (信访工作条例).",
    ),
    DeclineAdvice.other_department: Text(
        "可以向依法负责处理该事项的行政机关或者其他职能部门申请处理。",
        "You may ask the administrative authority or department responsible for the matter to deal with it.",
    ),
}


class RejectionGround(StrEnum):
    """Grounds for dismissing a confirmation application (民诉法解释 Art. 358)."""

    violates_mandatory_law = "violates_mandatory_law"  # 违反法律强制性规定
    harms_public_or_others = "harms_public_or_others"  # 损害国家利益、社会公共利益、他人合法权益
    against_public_order = "against_public_order"  # 违背公序良俗
    not_voluntary = "not_voluntary"  # 违反自愿原则
    unclear_content = "unclear_content"  # 内容不明确
    other = "other"  # 其他不能进行司法确认的情形


class NotAcceptedReason(StrEnum):
    """Why a court did not accept a confirmation application (民诉法解释 Art. 355, 357)."""

    outside_court_scope = "outside_court_scope"
    not_competent_court = "not_competent_court"
    personal_status = "personal_status"
    special_procedure = "special_procedure"
    ownership_confirmation = "ownership_confirmation"
    materials_missing = "materials_missing"
    other = "other"


class ReferralNotAcceptedReason(StrEnum):
    """Why an arbitration commission or a court does not accept a referral (不予受理). Which kind
    of referral takes which is `handoffs.answers.DECIDERS`."""

    outside_scope = "outside_scope"  # 不属于本委受理范围 (劳动争议: 非劳动争议)
    time_limit_passed = "time_limit_passed"  # 超过仲裁时效
    not_competent = "not_competent"  # 本委无管辖权
    no_arbitration_agreement = "no_arbitration_agreement"  # 没有有效的仲裁协议
    materials_incomplete = "materials_incomplete"  # 申请材料不齐
    already_decided = "already_decided"  # 已有生效的裁决、判决、裁定或调解书
    conditions_not_met = "conditions_not_met"  # 不符合起诉条件
    outside_court_scope = "outside_court_scope"  # 不属于人民法院受理民事诉讼的范围
    not_competent_court = "not_competent_court"  # 不属本院管辖
    arbitration_agreement = "arbitration_agreement"  # 当事人有书面仲裁协议
    other = "other"


class ReferralOutcome(StrEnum):
    """How an arbitration or a suit ended. Which kind of referral takes which is
    `handoffs.answers.DECIDERS`."""

    award = "award"  # 仲裁裁决
    judgment = "judgment"  # 判决
    settlement = "settlement"  # 调解/和解
    withdrawal = "withdrawal"  # 撤回
    dismissed = "dismissed"  # 驳回


class AgreementForm(StrEnum):
    written = "written"  # 书面协议 (人民调解法 Art. 29)
    oral = "oral"  # 口头协议 (Art. 30)


class ConfirmationCourtBasis(StrEnum):
    """Which court is competent (民诉法 Art. 205)."""

    inviting_court = "inviting_court"
    party_domicile = "party_domicile"
    subject_matter_location = "subject_matter_location"
    body_location = "body_location"


class ContactMethod(StrEnum):
    phone = "phone"
    visit = "visit"
    online = "online"
    sms = "sms"
