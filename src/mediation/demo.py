"""Demo data for a county center: bodies of every kind and tier, and cases in every state.

Cases are driven through the real service layer, so their timelines and events are what the
service itself would have written. Party names are the customary placeholders (张三, 李四 ...).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from stdnum.cn import ric

from mediation.agreements.schemas import AgreementIn, SessionIn, SignatureIn
from mediation.agreements.service import AgreementService
from mediation.bodies.models import Body, BodyJurisdiction, BodyKind, Mediator
from mediation.core.clock import FrozenClock
from mediation.core.db import Database
from mediation.core.http import etag_for
from mediation.core.pii import PiiCipher
from mediation.core.principal import Principal, Role
from mediation.core.secrets import resolve_secrets
from mediation.core.settings import Settings
from mediation.disputes.identity import region_prefix
from mediation.disputes.lifecycle import Action, Status
from mediation.disputes.models import Dispute
from mediation.disputes.schemas import ACTION_PAYLOADS, DisputeCreate
from mediation.disputes.service import DisputeService
from mediation.documents.service import DocumentService
from mediation.documents.storage import LocalBlobStore
from mediation.handoffs.schemas import AcceptanceIn
from mediation.handoffs.service import HandoffService
from mediation.identity.credentials import Passwords, key_prefix
from mediation.identity.models import ApiKey, User
from mediation.identity.service import IdentityService
from mediation.supervision.schemas import OrderIn, OwnerIn
from mediation.supervision.service import SupervisionService

COUNTY = "330681"
CENTER = "诸暨市矛盾纠纷调处化解中心"
# Made up, as the demo's names and numbers are: no local number begins with 0.
CENTER_PHONE = "0575-00000000"
BODIES: list[tuple[str, BodyKind, str, str]] = [
    (CENTER, BodyKind.mediation_center, "county", "330681000000"),
    ("枫桥镇枫源村人民调解委员会", BodyKind.people_mediation_committee, "village", "330681105201"),
    ("枫桥镇新枫村人民调解委员会", BodyKind.people_mediation_committee, "village", "330681105202"),
    ("店口镇湄池村人民调解委员会", BodyKind.people_mediation_committee, "village", "330681106203"),
    ("枫桥镇人民调解委员会", BodyKind.people_mediation_committee, "town", "330681105000"),
    ("店口镇人民调解委员会", BodyKind.people_mediation_committee, "town", "330681106000"),
    ("暨阳街道人民调解委员会", BodyKind.people_mediation_committee, "town", "330681001000"),
    ("市人民调解委员会", BodyKind.people_mediation_committee, "county", "330681000000"),
    ("市劳动争议人民调解委员会", BodyKind.industry_mediation, "county", "330681000000"),
    ("市医疗纠纷人民调解委员会", BodyKind.industry_mediation, "county", "330681000000"),
    ("市婚姻家庭纠纷调解委员会", BodyKind.industry_mediation, "county", "330681000000"),
    ("市物业纠纷人民调解委员会", BodyKind.industry_mediation, "county", "330681000000"),
    ("市道路交通事故纠纷调解委员会", BodyKind.industry_mediation, "county", "330681000000"),
    ("市消费者权益保护委员会调解室", BodyKind.administrative_mediation, "county", "330681000000"),
    ("市律师调解工作室", BodyKind.lawyer_mediation, "county", "330681000000"),
    ("市人民法院特邀调解工作室", BodyKind.court_invited_mediation, "county", "330681000000"),
    ("诸暨市人民法院", BodyKind.court, "county", "330681000000"),
    ("枫桥人民法庭", BodyKind.court, "town", "330681105000"),
    ("诸暨市劳动人事争议仲裁委员会", BodyKind.labour_arbitration_commission, "county", "330681000000"),
    ("绍兴仲裁委员会", BodyKind.commercial_arbitration_commission, "city", "330600000000"),
    ("诸暨市农村土地承包仲裁委员会", BodyKind.rural_land_arbitration_commission, "county", "330681000000"),
]

PEOPLE = ["张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十"]
ORGANISATIONS = [
    "某建筑劳务有限公司",
    "某物业服务有限公司",
    "某房地产开发有限公司",
    "某医院",
    "某汽车运输有限公司",
]

CASES: list[tuple[str, str, str, int, str]] = [
    # category, description, target state, people involved, severity
    ("neighbour", "相邻双方因院墙滴水及通行问题发生争执, 申请调解。", "registered", 2, "ordinary"),
    ("debt", "借款人到期未归还借款三万元, 出借人申请调解。", "registered", 2, "ordinary"),
    ("consumer", "购买的电动车电池一个月内多次故障, 商家拒绝退换。", "declined", 2, "ordinary"),
    ("housing_homestead", "兄弟二人对宅基地分界线有争议。", "accepted", 2, "ordinary"),
    ("property_management", "业主以漏水未修为由拒交物业费, 物业公司申请调解。", "accepted", 2, "ordinary"),
    ("traffic_accident", "两车刮擦事故, 双方对维修费用分担有争议。", "assigned", 2, "ordinary"),
    ("labour", "十二名工人被拖欠三个月工资, 要求用工单位支付。", "assigned", 12, "major"),
    ("neighbour", "楼上装修噪音影响休息, 双方多次争吵, 一方扬言要报复。", "mediating", 2, "ordinary"),
    ("marriage_family", "子女对赡养老人费用分担有分歧。", "mediating", 3, "ordinary"),
    ("medical", "患者家属认为手术后并发症系医疗过错, 要求赔偿。", "mediating", 2, "major"),
    ("contract", "装修合同工期延误, 业主要求减少价款。", "agreement_signed", 2, "ordinary"),
    ("debt", "货款八万元未结清, 双方同意分期支付。", "agreement_signed", 2, "ordinary"),
    ("damages", "饲养的狗咬伤路人, 就医疗费赔偿达成一致。", "performed", 2, "ordinary"),
    ("contract", "房屋租赁合同提前解除, 押金返还有争议。", "confirmation_pending", 2, "ordinary"),
    ("traffic_accident", "电动车与行人相撞, 就赔偿金额达成协议并申请司法确认。", "confirmed", 2, "ordinary"),
    ("debt", "合伙经营散伙后的债务分担协议被法院驳回确认申请。", "confirmation_rejected", 2, "ordinary"),
    ("business_operation", "合作社与农户就收购价格发生争议, 调解未成。", "mediation_failed", 6, "ordinary"),
    ("neighbour", "邻里因树木遮挡采光发生纠纷, 申请人撤回申请。", "withdrawn", 2, "ordinary"),
    (
        "labour",
        "员工被解除劳动合同后要求经济补偿, 调解未果导入劳动仲裁。",
        "referred_arbitration",
        2,
        "ordinary",
    ),
    ("contract", "买卖合同质量纠纷调解不成, 导入诉讼。", "referred_litigation", 2, "ordinary"),
    ("property_management", "小区停车位收费纠纷, 协议已履行并结案。", "closed", 30, "major"),
    ("damages", "高空坠物致车辆受损, 赔偿已履行并回访归档。", "archived", 2, "ordinary"),
    ("land_forest", "两村民对承包山林边界有争议。", "accepted", 2, "ordinary"),
    ("environment", "养殖场异味影响周边居民生活。", "registered", 25, "major"),
    ("expropriation_demolition", "拆迁补偿面积认定有分歧。", "assigned", 3, "serious"),
    ("other", "村集体收益分配有异议。", "registered", 40, "major"),
    ("labour", "建筑工地农民工工资拖欠, 协议分两期支付。", "agreement_signed", 15, "major"),
    ("medical", "牙科种植牙脱落, 患者要求退费赔偿。", "closed", 2, "ordinary"),
    ("consumer", "预付卡健身房关门, 会员要求退款。", "mediating", 8, "ordinary"),
    ("marriage_family", "离婚后子女探望安排发生争执。", "agreement_signed", 2, "ordinary"),
    ("debt", "民间借贷利息约定不明, 调解不成导入诉讼。", "referred_litigation", 2, "ordinary"),
    ("neighbour", "共用楼道堆放杂物引发冲突。", "closed", 2, "ordinary"),
    ("traffic_accident", "摩托车与货车碰撞, 就误工费达成协议。", "performed", 2, "ordinary"),
    ("housing_homestead", "翻建房屋影响邻居通风采光。", "mediation_failed", 2, "ordinary"),
]

# The demo mediator's own desk: cases of the village where the demo committee sits, which the clerk
# gives to that committee (就地化解, 人民调解法 Art. 34: committees are set up in villages to settle
# their residents' disputes there), so whoever signs in as `mediator` finds work in every column of
# the queue: one to sign for, cases in mediation (one with a sitting arranged, one with its
# agreement drafted and awaiting signatures) and one agreed.
DESK: list[tuple[str, str, str, int, str]] = [
    ("neighbour", "两户村民因共用排水沟堵塞互相指责, 雨天污水漫入院内。", "assigned", 2, "ordinary"),
    ("housing_homestead", "邻居翻建房屋时占用通道约半米, 双方协商未果。", "mediating", 2, "ordinary"),
    ("neighbour", "村民在自家田边焚烧秸秆, 烟尘影响邻居晾晒和养殖。", "mediating", 2, "ordinary"),
    ("debt", "村民之间借款两万元逾期未还, 双方同意调解。", "agreement_signed", 2, "ordinary"),
]
DESK_REGION = "330681105201"  # 枫桥镇枫源村
DESK_SITTING = "housing_homestead"  # the desk case with a sitting arranged
DESK_DRAFT = "neighbour"  # the desk case in mediation with its agreement drafted

# The path of actions that brings a new case to each state.
PATHS: dict[str, list[str]] = {
    "registered": [],
    "declined": ["decline"],
    "accepted": ["accept"],
    "assigned": ["accept", "assign"],
    "mediating": ["accept", "assign", "sign_for"],
    "agreement_signed": ["accept", "assign", "sign_for", "agree"],
    "performed": ["accept", "assign", "sign_for", "agree", "record_performance"],
    "confirmation_pending": ["accept", "assign", "sign_for", "agree", "request_confirmation"],
    "confirmed": ["accept", "assign", "sign_for", "agree", "request_confirmation", "confirm"],
    "confirmation_rejected": ["accept", "assign", "sign_for", "agree", "request_confirmation", "reject"],
    "mediation_failed": ["accept", "assign", "sign_for", "fail"],
    "withdrawn": ["accept", "withdraw"],
    "referred_arbitration": ["accept", "assign", "sign_for", "fail", "refer_arbitration"],
    "referred_litigation": ["accept", "assign", "sign_for", "fail", "refer_litigation"],
    "closed": ["accept", "assign", "sign_for", "agree", "record_performance", "close"],
    "archived": ["accept", "assign", "sign_for", "agree", "record_performance", "close", "archive"],
}

ROLE_FOR = {
    "decline": Role.clerk,
    "accept": Role.clerk,
    "assign": Role.clerk,
    "sign_for": Role.body_mediator,
    "agree": Role.body_mediator,
    "fail": Role.body_mediator,
    "record_performance": Role.body_mediator,
    "request_confirmation": Role.body_mediator,
    "confirm": Role.court,
    "reject": Role.court,
    "withdraw": Role.clerk,
    "refer_arbitration": Role.body_admin,
    "refer_litigation": Role.body_admin,
    "close": Role.clerk,
    "archive": Role.clerk,
}

# What the specialised bodies take (the others take every category).
BODY_CATEGORIES = {
    "市劳动争议人民调解委员会": ["labour"],
    "市医疗纠纷人民调解委员会": ["medical"],
    "市婚姻家庭纠纷调解委员会": ["marriage_family"],
    "市物业纠纷人民调解委员会": ["property_management"],
    "市道路交通事故纠纷调解委员会": ["traffic_accident"],
    "市消费者权益保护委员会调解室": ["consumer"],
}
# Each mediation body's roster: (name, title, specialties).
MEDIATORS = {
    "枫桥镇枫源村人民调解委员会": [("陈调解", "调委会主任", ["neighbour", "housing_homestead"])],
    "枫桥镇新枫村人民调解委员会": [("林调解", "调委会主任", ["neighbour"])],
    "店口镇湄池村人民调解委员会": [("黄调解", "调委会主任", ["neighbour", "debt"])],
    "枫桥镇人民调解委员会": [
        ("郑调解", "专职调解员", ["contract", "debt"]),
        ("冯调解", "专职调解员", ["land_forest", "environment"]),
    ],
    "店口镇人民调解委员会": [("何调解", "专职调解员", ["business_operation"])],
    "暨阳街道人民调解委员会": [("吕调解", "专职调解员", ["property_management", "neighbour"])],
    "市人民调解委员会": [("施调解", "首席调解员", ["expropriation_demolition", "other"])],
    "市劳动争议人民调解委员会": [("张律师", "专职调解员", ["labour"])],
    "市医疗纠纷人民调解委员会": [("孔医生", "专职调解员", ["medical"])],
    "市婚姻家庭纠纷调解委员会": [("曹调解", "专职调解员", ["marriage_family"])],
    "市物业纠纷人民调解委员会": [("严调解", "专职调解员", ["property_management"])],
    "市道路交通事故纠纷调解委员会": [("华调解", "专职调解员", ["traffic_accident"])],
    "市消费者权益保护委员会调解室": [("金调解", "调解员", ["consumer"])],
    "市律师调解工作室": [("魏律师", "律师调解员", ["contract", "debt", "damages"])],
    "市人民法院特邀调解工作室": [("陶调解", "特邀调解员", ["contract", "debt"])],
}


def resident_id(rng: random.Random, region: str = COUNTY) -> str:
    # 330681 (诸暨市) exists since 1989; stdnum checks the code was in use in the birth year.
    born = date(1990, 1, 1) + timedelta(days=rng.randrange(0, 365 * 15))
    first17 = f"{region}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return first17 + ric.calc_check_digit(first17 + "0")  # it expects a placeholder check digit


def _party(rng: random.Random, role: str, name: str, organisation: bool = False) -> dict[str, Any]:
    if organisation:
        return {
            "role": role,
            "kind": "organisation",
            "name": name,
            "phone": f"0575-8{rng.randrange(0, 10**6):06d}",
            "address": "浙江省诸暨市暨阳街道",
        }
    return {
        "role": role,
        "kind": "person",
        "name": name,
        "id_type": "resident_id",
        "id_number": resident_id(rng),
        "phone": f"13{rng.randrange(0, 10)}{rng.randrange(0, 10**8):08d}",
        "address": "浙江省诸暨市枫桥镇",
    }


def _payload(
    action: str,
    dispute: Dispute,
    bodies: dict[str, Body],
    today: date,
    recommended: uuid.UUID | None,
    roster: dict[uuid.UUID, uuid.UUID],
    agreement_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    party_ids = [str(p.id) for p in dispute.parties]
    court = bodies["诸暨市人民法院"]
    payloads: dict[str, Callable[[], dict[str, Any]]] = {
        "decline": lambda: {
            "reason": "属于消费者权益投诉, 应向市场监管部门投诉",
            "advice": "other_department",
        },
        "accept": lambda: {},
        "assign": lambda: {"body_id": str(recommended)},
        "sign_for": lambda: (
            {"mediator_id": str(roster[dispute.body_id])} if dispute.body_id in roster else {}
        ),
        "agree": lambda: {"agreement_id": str(agreement_id)},
        "fail": lambda: {"reason_code": "positions_too_far_apart", "note": "双方对金额分歧较大"},
        "record_performance": lambda: {"performed_on": today.isoformat()},
        "request_confirmation": lambda: {
            "court_id": str(court.id),
            "basis": "body_location",
            "applicant_party_ids": party_ids,
        },
        "confirm": lambda: {
            "ruling_number": f"(2026)浙0681民特{dispute.case_number[-3:]}号",
            "ruled_on": today.isoformat(),
        },
        "reject": lambda: {
            "ground": "unclear_content",
            "ruling_number": f"(2026)浙0681民特{dispute.case_number[-3:]}号之一",
            "ruled_on": today.isoformat(),
        },
        "withdraw": lambda: {"reason": "申请人表示双方已自行和解"},
        "refer_arbitration": lambda: {"commission_id": str(bodies["诸暨市劳动人事争议仲裁委员会"].id)},
        "refer_litigation": lambda: {"court_id": str(court.id), "claims": "请求判令被申请人支付欠款及利息。"},
        "close": lambda: {"note": "协议履行完毕"},
        "archive": lambda: {
            "follow_up": {
                "contact_method": "phone",
                "satisfaction": 5,
                "agreement_performed": True,
                "notes": "当事人表示满意",
            }
        },
    }
    return payloads[action]()


@dataclass(frozen=True, slots=True)
class DemoSeeded:
    loaded: bool  # False: skipped, the database already held cases, or refused
    message: str
    # The database holds accounts, organisations or keys of its own: a real one, where the demo's
    # public passwords and keys would open the service to anyone (the command fails).
    refused: bool = False


async def foreign_records(session: AsyncSession, passwords: Passwords) -> dict[str, int]:
    """What the database holds that the demo did not make, by kind (only kinds with some). A demo
    username counts as the demo's only with the demo's password: a real `admin` is a real one."""
    demo_names = [username for username, *_ in DEMO_USERS]
    users = await session.scalar(
        select(func.count()).select_from(User).where(User.username.not_in(demo_names))
    )
    for user in (await session.scalars(select(User).where(User.username.in_(demo_names)))).all():
        if not passwords.verify(user.password_hash, demo_password(user.username)):
            users = (users or 0) + 1
    found = {
        "accounts": users or 0,
        "organisations": await session.scalar(
            select(func.count()).select_from(Body).where(Body.name.not_in([name for name, *_ in BODIES]))
        )
        or 0,
        "API keys": await session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.prefix.not_in([key_prefix(secret) for secret, *_ in DEMO_KEYS]))
        )
        or 0,
    }
    return {kind: n for kind, n in found.items() if n}


async def seed_demo(settings: Settings, *, force: bool = False) -> DemoSeeded:
    db = Database(settings)
    try:
        async with db.writer() as session:
            existing = await session.scalar(select(func.count()).select_from(Dispute))
            if existing and not force:
                return DemoSeeded(False, f"demo data skipped: the database already holds {existing} cases")
            # No cases is not an empty database: a freshly migrated production one has its first
            # administrator (`users create`) before its first case.
            foreign = await foreign_records(session, Passwords(settings))
            if foreign and not force:
                held = ", ".join(f"{n} {kind}" for kind, n in foreign.items())
                return DemoSeeded(
                    False,
                    f"error: demo data refused: the database holds {held} the demo did not make. "
                    "The demo's accounts and API keys are public and must never be in a real "
                    "database; use an empty one (or --force to load it anyway)",
                    refused=True,
                )
        rng = random.Random(20261122)
        secrets = resolve_secrets(settings)
        cipher = PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key)
        now = datetime.now(UTC)
        async with db.writer() as session, session.begin():
            bodies = {}
            for name, kind, tier, region in BODIES:
                body = await session.scalar(select(Body).where(Body.name == name))
                if body is None:
                    body = Body(
                        id=uuid.uuid4(),
                        name=name,
                        kind=kind,
                        tier=tier,
                        region_code=region,
                        categories=BODY_CATEGORIES.get(name, []),
                        # The receipts and notices the center prints give its telephone.
                        contact_phone=CENTER_PHONE if name == CENTER else None,
                        created_at=now,
                    )
                    session.add(body)
                    session.add(BodyJurisdiction(body_id=body.id, region_prefix=region_prefix(region)))
                    for mediator_name, title, specialties in MEDIATORS.get(name, []):
                        session.add(
                            Mediator(
                                body_id=body.id,
                                name=mediator_name,
                                title=title,
                                specialties=specialties,
                                created_at=now,
                            )
                        )
                bodies[name] = body
            await session.flush()
            # The window's clerk is a demo account, made before the cases it registers, so that
            # their receipts and notices name it as 经办人 (`seed_accounts` then finds it there).
            clerk = await _demo_clerk(session, settings, bodies[CENTER])
            roster = {
                m.body_id: m.id
                for m in (await session.scalars(select(Mediator).order_by(Mediator.created_at))).all()
            }
        count = 0
        for i, (category, description, target, people, severity) in enumerate([*CASES, *DESK]):
            desk = i >= len(CASES)
            # Spread intake over the last weeks; every step happens the same day, so legal windows
            # hold. The desk's cases came in over the last few days.
            days_ago = len(DESK) - (i - len(CASES)) if desk else len(CASES) - i
            at = now - timedelta(days=days_ago, hours=rng.randrange(1, 8))
            if target == "assigned":
                # Assigned today, so the bodies are still within their working days to sign for it
                # (older ones would be returned by the sign-for clock as soon as the server starts).
                at = now - timedelta(minutes=30 + i)
            clock = FrozenClock(at, settings.timezone)
            async with db.writer() as session, session.begin():
                documents = DocumentService(session, LocalBlobStore(settings.documents_dir), settings)
                service = DisputeService(session, clock, settings, cipher, documents)
                respondent_org = category in (
                    "labour",
                    "property_management",
                    "medical",
                    "expropriation_demolition",
                )
                parties = [_party(rng, "applicant", PEOPLE[i % 8])]
                parties.append(
                    _party(rng, "respondent", ORGANISATIONS[i % len(ORGANISATIONS)], organisation=True)
                    if respondent_org
                    else _party(rng, "respondent", PEOPLE[(i + 3) % 8])
                )
                data = DisputeCreate.model_validate(
                    {
                        "category": category,
                        "description": description,
                        # The desk's cases came from the village's grid workers and the window.
                        "channel": ("grid" if i % 2 else "window")
                        if desk
                        else ["window", "hotline", "grid", "online", "petition", "window"][i % 6],
                        "external_reference": f"12345-2026-{i:05d}" if i % 6 == 1 and not desk else None,
                        "region_code": DESK_REGION
                        if desk
                        else ["330681105201", "330681105202", "330681106203", "330681001000"][i % 4],
                        "amount_in_dispute": str(rng.randrange(1, 200) * 500)
                        if category != "neighbour"
                        else None,
                        "people_involved": people,
                        "severity": severity,
                        "parties": parties,
                    }
                )
                dispute, _code = await service.register(data, clerk)
                agreement_id = None
                for action in PATHS[target]:
                    recommended = None
                    if action == "agree":
                        agreement_id = await _signed_agreement(AgreementService(service), dispute, clock)
                    if action in ("confirm", "reject"):
                        await _court_accepts(service, dispute)
                    if action == "assign":
                        # The demo clerk takes the first recommendation, as a clerk usually would,
                        # but gives the desk's cases to the committee of the parties' village.
                        outcome = await service.triage.evaluate(dispute)
                        recommended = bodies[DEMO_BODY].id if desk else outcome.candidates[0].body.id
                    payload = ACTION_PAYLOADS[action].model_validate(
                        _payload(action, dispute, bodies, clock.today(), recommended, roster, agreement_id)
                    )
                    dispute = await service.apply(
                        dispute.id,
                        Action(action),
                        payload,
                        _actor(action, dispute, clerk),
                        etag_for(dispute.version),
                    )
                assert dispute.status == Status(target), (dispute.case_number, dispute.status, target)
                if desk and target == "mediating":
                    await _desk_work(service, dispute, clock, draft=category == DESK_DRAFT)
                count += 1
                if description.startswith(("患者家属", "楼上装修")):
                    await _supervise(service, dispute, bodies[CENTER].id)
        count += await _wage_wave(db, settings, cipher, rng, now, clerk)
        return DemoSeeded(True, f"demo data loaded: {len(BODIES)} bodies, {count} cases")
    finally:
        await db.dispose()


async def _supervise(service: DisputeService, dispute: Dispute, center_id: uuid.UUID) -> None:
    """A supervision order on a case in mediation, and an owner for the hard one (包案)."""
    supervisor = Principal(Role.supervisor, "demo-supervisor", center_id, region=COUNTY)
    supervision = SupervisionService(service)
    await supervision.issue(
        dispute.id,
        OrderIn(instruction="请于三个工作日内报告调解进展, 并说明下一步安排"),
        supervisor,
        etag_for(dispute.version),
    )
    if dispute.category == "medical":
        await supervision.set_owner(
            dispute.id,
            OwnerIn(name="陈副镇长", title="枫桥镇副镇长", reason="医疗纠纷涉及多方, 由镇领导包案"),
            supervisor,
            etag_for(dispute.version),
        )


async def _desk_work(service: DisputeService, dispute: Dispute, clock: FrozenClock, *, draft: bool) -> None:
    """A case in mediation at the demo committee: a sitting arranged for the day after tomorrow, or
    its agreement drafted and awaiting the parties' signatures."""
    agreements = AgreementService(service)
    if draft:
        await _signed_agreement(agreements, dispute, clock, sign=False)
        return
    mediator = Principal(Role.body_mediator, "demo-body_mediator", dispute.body_id)
    # Two days after the demo is loaded, whenever the case came in: a sitting still to come.
    today = datetime.now(clock.zone).date()
    at = datetime.combine(today + timedelta(days=2), time(9, 30), tzinfo=clock.zone)
    await agreements.schedule(
        dispute.id, SessionIn(scheduled_at=at, place="枫源村村民委员会调解室"), mediator
    )


async def _wage_wave(
    db: Database,
    settings: Settings,
    cipher: PiiCipher,
    rng: random.Random,
    now: datetime,
    clerk: Principal,
) -> int:
    """Five workers of one subcontractor claim unpaid wages within four days: the cluster rule
    (the same respondent, distinct claimants, within a week) raises one early-warning alert."""
    workers = ["冯一", "陈二", "褚三", "卫四", "蒋五"]
    for n, worker in enumerate(workers):
        clock = FrozenClock(now - timedelta(days=4 - n, hours=2), settings.timezone)
        async with db.writer() as session, session.begin():
            service = DisputeService(session, clock, settings, cipher)
            data = DisputeCreate.model_validate(
                {
                    "category": "labour",
                    "description": f"{worker}在某建筑工地务工, 被拖欠工资 {rng.randrange(8, 30) * 1000} 元, 申请调解。",
                    "channel": "window",
                    "region_code": "330681105201",
                    "amount_in_dispute": str(rng.randrange(8, 30) * 1000),
                    "complexity": "general",
                    "parties": [
                        _party(rng, "applicant", worker),
                        _party(rng, "respondent", "某建筑劳务有限公司", organisation=True),
                    ],
                }
            )
            await service.register(data, clerk)
    return len(workers)


async def _signed_agreement(
    agreements: AgreementService, dispute: Dispute, clock: FrozenClock, *, sign: bool = True
) -> uuid.UUID:
    """Draft the agreement from the case and record every signature, the mediator's and the seal
    (or, with `sign` false, leave the draft unsigned)."""
    mediator = Principal(Role.body_mediator, "demo-body_mediator", dispute.body_id)
    applicant = next(p for p in dispute.parties if p.role == "applicant")
    respondent = next(p for p in dispute.parties if p.role == "respondent")
    amount = dispute.amount_in_dispute or Decimal("1000.00")
    # Wage arrears and larger debts are paid in two instalments, the rest at once.
    instalments = 2 if amount >= Decimal("20000") else 1
    obligations = [
        {
            "obligor_party_id": respondent.id,
            "obligee_party_id": applicant.id,
            "kind": "payment",
            "amount": (amount / instalments).quantize(Decimal("0.01")),
            "description": "支付款项" if instalments == 1 else f"分期支付第{n + 1}期",
            "place": "诸暨市枫桥镇",
            "manner": "银行转账至申请人账户",
            "due_on": clock.today() + timedelta(days=15 * (n + 1)),
        }
        for n in range(instalments)
    ]
    content = AgreementIn.model_validate(
        {
            "facts": dispute.description,
            "disputed_matters": "赔偿(支付)金额及履行期限。",
            "responsibility": "被申请人对纠纷的发生负主要责任。",
            "terms": ["双方就本纠纷再无其他争议。"],
            "obligations": obligations,
        }
    )
    _, agreement = await agreements.draft(dispute.id, content, mediator)
    if not sign:
        return agreement.id
    signatures = [SignatureIn(signer="party", party_id=p.id, method="in_person") for p in dispute.parties]
    signatures += [
        SignatureIn(signer="mediator", method="in_person"),
        SignatureIn(signer="body_seal", method="seal"),
    ]
    for signature in signatures:
        _, agreement = await agreements.sign(
            dispute.id, agreement.id, signature, mediator, etag_for(agreement.version)
        )
    return agreement.id


async def _court_accepts(service: DisputeService, dispute: Dispute) -> None:
    assert dispute.handoff is not None and dispute.handoff_target_id is not None
    court = Principal(Role.court, "demo-court", dispute.handoff_target_id)
    handoffs = HandoffService(service)
    handoff = await handoffs.get(uuid.UUID(str(dispute.handoff["id"])), court)
    acceptance = AcceptanceIn(
        decision="accepted", case_number=f"(2026)浙0681民特{dispute.case_number[-3:]}号"
    )
    await handoffs.acknowledge(handoff.id, acceptance, court, etag_for(handoff.version))


def _actor(action: str, dispute: Dispute, clerk: Principal) -> Principal:
    """The principal who takes `action` in the demo: someone whose scope includes the case."""
    role = ROLE_FOR[action]
    if role == Role.clerk:
        return clerk
    organisation = dispute.handoff_target_id if role in (Role.court, Role.arbitration) else dispute.body_id
    return Principal(role, f"demo-{role.value}", organisation)


# One account or key per role, printed by `make run` so a newcomer can try each. Demo only: these
# secrets are public, so a center must never load demo data into a production database.
DEMO_BODY = "枫桥镇枫源村人民调解委员会"
DEMO_USERS: list[tuple[str, str, Role, str | None]] = [
    ("clerk", "窗口受理员(演示)", Role.clerk, CENTER),
    ("supervisor", "督办员(演示)", Role.supervisor, CENTER),
    ("mediator", "调解员(演示)", Role.body_mediator, DEMO_BODY),
    ("body-admin", "调委会管理员(演示)", Role.body_admin, DEMO_BODY),
    ("admin", "系统管理员(演示)", Role.admin, None),
    ("auditor", "审计员(演示)", Role.auditor, None),
]
DEMO_KEYS: list[tuple[str, Role, str]] = [
    ("mk_demo0001_court-demo-key-not-for-production-use-000001", Role.court, "诸暨市人民法院"),
    (
        "mk_demo0002_arbitration-demo-key-not-for-production-0002",
        Role.arbitration,
        "诸暨市劳动人事争议仲裁委员会",
    ),
    ("mk_demo0003_mediation-body-demo-key-not-for-production-3", Role.body_mediator, DEMO_BODY),
]


async def _demo_clerk(session: AsyncSession, settings: Settings, center: Body) -> Principal:
    """The demo's window clerk (DEMO_USERS' `clerk`), made now if missing, as the principal who
    registers the demo's cases and takes the clerk's steps in them."""
    username, display, role, _ = next(u for u in DEMO_USERS if u[2] == Role.clerk)
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        user = await IdentityService(session, Passwords(settings)).create_user(
            username, display, role, center.id, demo_password(username), settings.min_password_length
        )
    return Principal(
        Role(user.role),
        str(user.id),
        user.organisation_id,
        region=region_prefix(center.region_code),
        name=user.display_name,
    )


def demo_password(username: str) -> str:
    return f"{username}-demo-2026"


async def seed_accounts(settings: Settings, *, create: bool = True) -> str:
    """Create the demo accounts and keys if missing (unless `create` is off: then only those
    already there are listed); describe how to use them."""
    db = Database(settings)
    passwords = Passwords(settings)
    users: list[str] = []
    keys: list[str] = []
    try:
        async with db.writer() as session, session.begin():
            svc = IdentityService(session, passwords)
            by_name = {b.name: b for b in (await session.scalars(select(Body))).all()}
            for username, display, role, organisation in DEMO_USERS:
                user = await session.scalar(select(User).where(User.username == username))
                if not create and (
                    # Listed, not created: only the demo's own account. A real database may well
                    # have its own `admin`, whose password must not be claimed here.
                    user is None or not passwords.verify(user.password_hash, demo_password(username))
                ):
                    continue
                if user is None:
                    org_id = by_name[organisation].id if organisation else None
                    await svc.create_user(
                        username, display, role, org_id, demo_password(username), settings.min_password_length
                    )
                users.append(f"  {role.value:<14} user {username:<11} password {demo_password(username)}")
            for secret, role, organisation in DEMO_KEYS:
                if await session.scalar(select(ApiKey).where(ApiKey.prefix == key_prefix(secret))) is None:
                    if not create:
                        continue
                    await svc.create_key(by_name[organisation].id, role, "demo", "demo", secret=secret)
                keys.append(f"  {role.value:<14} {organisation}: {secret}")
    finally:
        await db.dispose()
    if not users and not keys:
        return "no demo accounts added: this database was not loaded with demo data (use --force)"
    return "\n".join(
        [
            "",
            "Demo sign-in (the front-end at /login, or POST /v1/auth/token; demo data only, never in production):",
            *users,
            "Demo API keys (header X-API-Key):",
            *keys,
        ]
    )
