"""What the law asks of an agreement before it can be signed and when it takes effect.

人民调解法 Art. 29: a written agreement states the parties' basic details; the main facts, the
disputed matters and each side's responsibility; what was agreed, and how and by when it is
performed. It takes effect once every party has signed, sealed or put a fingerprint on it, the
mediator has signed and the body's seal is affixed. Art. 28: parties who need no written
agreement may agree orally, and the mediator records what they agreed; Art. 30: an oral agreement
takes effect when reached. These functions are pure: they look at loaded rows only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from mediation.agreements.models import Agreement
from mediation.core.i18n import Text
from mediation.core.legal_time import period_end
from mediation.core.refusal import Refusal
from mediation.disputes.enums import AgreementForm, PartyKind
from mediation.disputes.models import Dispute, Party

ART_28 = "人民调解法 第二十八条"
ART_29 = "人民调解法 第二十九条"
MEDIATOR = "mediator"
SEAL = "body_seal"


def principals(dispute: Dispute) -> list[Party]:
    """The parties who are bound by the agreement and sign it (agents act for them)."""
    return [p for p in dispute.parties if p.role != "agent"]


def missing_elements(agreement: Agreement, dispute: Dispute) -> list[Refusal]:
    """The contents Art. 29 requires that this version still lacks; empty when it may be signed."""
    out: list[Refusal] = []
    written = agreement.form == AgreementForm.written
    if written:
        for party in principals(dispute):
            if party.kind == PartyKind.person and not party.id_number_enc:
                out.append(
                    Refusal(
                        "party_identity_missing",
                        Text(
                            "当事人「{n}」缺少身份证件号码", "Party {n} has no identity document number"
                        ).format(n=party.name),
                        ART_29,
                    )
                )
            if not (party.address or party.phone_enc):
                out.append(
                    Refusal(
                        "party_contact_missing",
                        Text("当事人「{n}」缺少住址或联系方式", "Party {n} has no address or contact").format(
                            n=party.name
                        ),
                        ART_29,
                    )
                )
    texts = {
        "facts": Text("主要事实", "the main facts"),
        "disputed_matters": Text("争议事项", "the disputed matters"),
        "responsibility": Text("各方当事人的责任", "each side's responsibility"),
    }
    for field, label in texts.items():
        if not getattr(agreement, field).strip():
            out.append(
                Refusal(
                    f"{field}_missing",
                    Text(f"协议未载明{label.zh}", f"The agreement does not state {label.en}"),
                    ART_29,
                )
            )
    if not agreement.obligations and not any(t.strip() for t in agreement.terms):
        out.append(
            Refusal(
                "content_missing",
                Text("协议未载明达成协议的内容", "The agreement states nothing that was agreed"),
                ART_29,
            )
        )
    for number, obligation in enumerate(agreement.obligations, start=1):
        if obligation.kind == "payment" and not obligation.amount:
            out.append(
                Refusal(
                    "obligation_amount_missing",
                    Text("第{i}项义务未载明金额", "Obligation {i} states no amount").format(i=number),
                    ART_29,
                )
            )
        if not obligation.manner.strip():
            out.append(
                Refusal(
                    "obligation_manner_missing",
                    Text(
                        "第{i}项义务未载明履行方式", "Obligation {i} states no manner of performance"
                    ).format(i=number),
                    ART_29,
                )
            )
    if not agreement.mediator_name:
        # Art. 29: the mediator signs a written agreement; Art. 28, 30: the mediator records an oral
        # one, which takes effect on that record. Either way a case with no mediator has no one to.
        out.append(
            Refusal(
                "mediator_missing",
                Text("案件尚未指定调解员, 协议无调解员署名", "No mediator is named on the case")
                if written
                else Text(
                    "案件尚未指定调解员, 口头协议无人记录", "No mediator is named on the case to record it"
                ),
                ART_29 if written else ART_28,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Signer:
    key: str  # party id, "mediator" or "body_seal"
    kind: str  # party | mediator | body_seal
    name: str


def required_signers(agreement: Agreement, dispute: Dispute) -> list[Signer]:
    mediator = Signer(MEDIATOR, "mediator", agreement.mediator_name or "调解员")
    if agreement.form == AgreementForm.oral:
        return [mediator]  # Art. 28: recorded by the mediator
    parties = [Signer(str(p.id), "party", p.name) for p in principals(dispute)]
    return [*parties, mediator, Signer(SEAL, "body_seal", agreement.body_name)]


def awaiting(agreement: Agreement, dispute: Dispute) -> list[Signer]:
    signed = {s.signer_key for s in agreement.signatures}
    return [s for s in required_signers(agreement, dispute) if s.key not in signed]


def content_hash(agreement: Agreement, dispute: Dispute) -> str:
    """SHA-256 over the canonical content: what each party agrees to and an e-signature signs."""
    content: dict[str, Any] = {
        "case_number": dispute.case_number,
        "number": agreement.number,
        "form": agreement.form,
        "parties": [[str(p.id), p.role, p.name] for p in principals(dispute)],
        "facts": agreement.facts,
        "disputed_matters": agreement.disputed_matters,
        "responsibility": agreement.responsibility,
        "terms": agreement.terms,
        "obligations": [
            [
                str(o.obligor_party_id),
                str(o.obligee_party_id) if o.obligee_party_id else None,
                o.kind,
                f"{o.amount:.2f}" if o.amount is not None else None,
                o.description,
                o.place,
                o.manner,
                o.due_on.isoformat(),
            ]
            for o in agreement.obligations
        ],
        "body": agreement.body_name,
        "mediator": agreement.mediator_name,
    }
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def agreement_summary(agreement: Agreement) -> dict[str, Any]:
    """What the case record shows of the agreement it recorded (`DisputeOut.agreement`)."""
    return {
        "id": str(agreement.id),
        "number": agreement.number,
        "form": agreement.form,
        "content_hash": agreement.content_hash,
        "effective_on": agreement.effective_on.isoformat() if agreement.effective_on else None,
        "obligations": len(agreement.obligations),
    }


def past_its_day(due_on: date, today: date) -> bool:
    """Whether an obligation due on `due_on` is late on `today`. A day to perform that falls on a
    rest day runs to the next working day (民法典 Art. 203)."""
    return period_end(due_on, 0).last_day < today
