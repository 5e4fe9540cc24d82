"""The front-end in a real browser: Debian's Chromium driven by Playwright, against the service run
as a user runs it (`mediation migrate`, `seed-demo`, `serve`) on SQLite and on PostgreSQL.

Screenshots of the intake form, the receipt, the case page and the dashboard are written to
`test-artifacts/screenshots/` (not committed) for review.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from stdnum.cn import ric

from tests.conftest import IN_CI, PG_ADMIN_DSN, TEST_SECRETS, _pg_reachable
from tests.support import intake_body

# A browser of its own and a served app; its waits are measured in seconds.
pytestmark = pytest.mark.serial

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a closed network: no sandbox, and none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
CASE_NUMBER = re.compile(r"^\d{6}-\d{4}-\d{6}$")
VILLAGE = "330681105201"  # 枫桥镇枫源村, where the demo mediator's committee sits


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the service did not become ready: {log.read_text()[-3000:]}")


def _in_thread(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion on a thread of its own: Playwright's loop owns this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work()).result()


def _postgres_database(name: str) -> str:
    with ThreadPoolExecutor(1) as pool:
        problem = pool.submit(_pg_reachable).result()
    if problem:
        if IN_CI:
            pytest.fail(
                f"PostgreSQL is required in CI and unreachable at {PG_ADMIN_DSN}: {problem}", pytrace=False
            )
        pytest.skip(f"PostgreSQL unreachable ({problem}); set CI=true to make this an error")

    async def recreate() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    _in_thread(recreate)
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def _drop_postgres_database(name: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    _in_thread(drop)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service as `make run` starts it: migrated, demo data loaded, served by uvicorn."""
    workdir = tmp_path_factory.mktemp(f"live-{request.param}")
    pg_name = f"mediation_web_{os.getpid()}"
    url = (
        f"sqlite+aiosqlite:///{workdir / 'mediation.db'}"
        if request.param == "sqlite"
        else _postgres_database(pg_name)
    )
    env = {
        **os.environ,
        "MEDIATION_DATABASE_URL": url,
        "MEDIATION_JWT_SECRET": TEST_SECRETS["jwt_secret"],
        "MEDIATION_PII_ENCRYPTION_KEYS": TEST_SECRETS["pii_encryption_keys"],
        "MEDIATION_PII_INDEX_KEY": TEST_SECRETS["pii_index_key"],
        "MEDIATION_DOCUMENTS_DIR": str(workdir / "documents"),
        # Cheap password hashing: the browser tests sign in many times.
        "MEDIATION_ARGON2_TIME_COST": "1",
        "MEDIATION_ARGON2_MEMORY_KIB": "1024",
        "MEDIATION_ARGON2_PARALLELISM": "1",
        "MEDIATION_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000",
    }
    cli = [sys.executable, "-m", "mediation"]
    for step in (["migrate"], ["seed-demo"]):
        subprocess.run([*cli, *step], env=env, cwd=workdir, check=True, capture_output=True)
    port = _free_port()
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        if request.param == "postgresql":
            _drop_postgres_database(pg_name)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (Debian package chromium; .ci/run installs it)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: object, live_server: str, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(
        viewport={"width": 1366, "height": 768}, base_url=live_server, locale="zh-CN"
    )  # type: ignore[attr-defined]
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    # The last page each test saw, to read when one fails.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w-]+", "-", request.node.name)
    (SCREENSHOTS / f"last-{name}.html").write_text(tab.content())
    context.close()


def shot(page: object, name: str, database: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{database}-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def database_of(live_server_request: pytest.FixtureRequest) -> str:
    return str(live_server_request.node.callspec.params["live_server"])


def sign_in(page: object, username: str) -> None:
    page.context.clear_cookies()  # type: ignore[attr-defined]
    page.goto("/login")  # type: ignore[attr-defined]
    page.fill("#username", username)  # type: ignore[attr-defined]
    page.fill("#password", f"{username}-demo-2026")  # type: ignore[attr-defined]
    page.click("form[action='/login'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]


def resident_id(serial: int) -> str:
    # 330681 (诸暨市) exists since 1989: stdnum checks the code was in use in the birth year.
    body = f"330681199005{serial % 28 + 1:02d}{serial % 900 + 100:03d}"
    return body + ric.calc_check_digit(body + "0")  # it expects a placeholder check digit


def api_token(base: str, username: str) -> str:
    response = httpx.post(
        f"{base}/v1/auth/token", json={"username": username, "password": f"{username}-demo-2026"}, timeout=10
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def api_register(base: str, token: str, description: str) -> dict[str, Any]:
    """A case registered through the API, as a clerk's client would."""
    response = httpx.post(
        f"{base}/v1/disputes",
        json=intake_body(description=description),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


def api_cases(base: str, token: str, text: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{base}/v1/disputes", params={"q": text}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    response.raise_for_status()
    return list(response.json()["items"])


def fill_party(
    page: object, index: int, *, role: str, name: str, id_number: str = "", phone: str = ""
) -> None:
    prefix = f"#f-parties-{index}--"
    page.select_option(f"{prefix}role", role)  # type: ignore[attr-defined]
    page.fill(f"{prefix}name", name)  # type: ignore[attr-defined]
    if id_number:
        page.select_option(f"{prefix}id_type", "resident_id")  # type: ignore[attr-defined]
        page.fill(f"{prefix}id_number", id_number)  # type: ignore[attr-defined]
    if phone:
        page.fill(f"{prefix}phone", phone)  # type: ignore[attr-defined]


def start_intake(page: object, marker: str, facts: str, category: str = "debt") -> str:
    """Signed in as the clerk, the intake form with the case's category, facts and village filled
    in; the description starts with a marker unique to this run, which the API search finds it by."""
    marked = f"{marker}{int(time.time() * 1000) % 100000}"
    sign_in(page, "clerk")
    page.goto("/intake")  # type: ignore[attr-defined]
    page.select_option("#f-category", category)  # type: ignore[attr-defined]
    page.fill("#f-description", f"{marked}: {facts}")  # type: ignore[attr-defined]
    page.fill("#f-region_code", VILLAGE)  # type: ignore[attr-defined]
    return marked


def submit(page: object, button: object, done: str) -> None:
    """Click a form's button and wait for the case page that confirms it."""
    with page.expect_navigation():  # type: ignore[attr-defined]
        button.click()  # type: ignore[attr-defined]
    assert f"done={done}" in page.url, page.locator(".error").all_inner_texts()  # type: ignore[attr-defined]


def open_action(page: object, action: str) -> object:
    details = page.locator(f"details.action[data-action='{action}']")  # type: ignore[attr-defined]
    details.locator("summary").click()
    return details


# ---- 1. the whole path, window to dashboard --------------------------------------------------------


def test_clerk_registers_assigns_mediator_signs_for_and_records_agreement_supervisor_sees_it(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    database = database_of(request)
    start_intake(page, "邻里通道纠纷", "两户相邻, 因共用通道堆放杂物发生争执, 申请调解。", "neighbour")
    page.fill("#f-amount_in_dispute", "2000")  # type: ignore[attr-defined]
    fill_party(page, 0, role="applicant", name="张某某", id_number=resident_id(1), phone="13800138001")
    fill_party(page, 1, role="respondent", name="李某某", id_number=resident_id(3), phone="13900139002")
    # The number is checked as it is typed, by the server's own rule.
    page.locator("[data-field='parties[0].id_number'] .ok").wait_for()  # type: ignore[attr-defined]
    shot(page, "intake-form", database)
    page.click("form#intake-form button[type=submit]")  # type: ignore[attr-defined]

    number = page.locator("#case-number").inner_text().strip()  # type: ignore[attr-defined]
    assert CASE_NUMBER.match(number), number
    assert len(page.locator("#query-code").inner_text().strip()) == 8  # type: ignore[attr-defined]
    assert "受理回执" in page.locator("h1").inner_text()  # type: ignore[attr-defined]
    shot(page, "receipt", database)
    # Printed, the receipt keeps who signs it for the center and drops the page's buttons.
    page.emulate_media(media="print")  # type: ignore[attr-defined]
    signoff = page.locator("#signoff")  # type: ignore[attr-defined]
    assert signoff.is_visible() and "窗口受理员(演示)" in signoff.inner_text()
    assert "受理单位（盖章）" in signoff.inner_text()
    assert not page.locator("#receipt .actions-bar").is_visible()  # type: ignore[attr-defined]
    page.emulate_media(media="screen")  # type: ignore[attr-defined]

    page.click("text=查看案件")  # type: ignore[attr-defined]
    case_url = page.url  # type: ignore[attr-defined]
    submit(page, open_action(page, "accept").locator("button[type=submit]"), "accept")
    assert "已受理" in page.locator(".case-head .badge").inner_text()  # type: ignore[attr-defined]
    # Triage's recommendations come with their reasons; the first one is assigned.
    assert page.locator("#triage .recommendations li").count() >= 1  # type: ignore[attr-defined]
    assign = open_action(page, "assign")
    choice = assign.locator("select[name=body_id] option", has_text="推荐").filter(has_text="枫源村")  # type: ignore[attr-defined]
    assign.locator("select[name=body_id]").select_option(choice.first.get_attribute("value"))  # type: ignore[attr-defined]
    submit(page, assign.locator("button[type=submit]"), "assign")
    assert "已指派" in page.locator(".case-head .badge").inner_text()  # type: ignore[attr-defined]

    sign_in(page, "mediator")
    page.goto("/queue?tab=assigned")  # type: ignore[attr-defined]
    page.click(f"text={number}")  # type: ignore[attr-defined]
    assert page.url == case_url  # type: ignore[attr-defined]
    sign_for = open_action(page, "sign_for")
    sign_for.locator("select[name=mediator_id]").select_option(index=1)
    submit(page, sign_for.locator("button[type=submit]"), "sign_for")
    assert "调解中" in page.locator(".case-head .badge").inner_text()  # type: ignore[attr-defined]

    page.locator("details.draft summary").click()  # type: ignore[attr-defined]
    draft = page.locator("form#draft-agreement")  # type: ignore[attr-defined]
    draft.locator("[name=facts]").fill("被申请人在共用通道堆放杂物, 影响申请人通行。")
    draft.locator("[name=disputed_matters]").fill("杂物清理期限及损失赔偿。")
    draft.locator("[name=responsibility]").fill("被申请人负主要责任。")
    draft.locator("[name=terms]").fill("被申请人三日内清理通道杂物。\n双方今后共同维护通道畅通。")
    draft.locator("[name='obligations[0].obligor_party_id']").select_option(label="李某某")
    draft.locator("[name='obligations[0].obligee_party_id']").select_option(label="张某某")
    draft.locator("[name='obligations[0].kind']").select_option("payment")
    draft.locator("[name='obligations[0].amount']").fill("500")
    draft.locator("[name='obligations[0].description']").fill("赔偿损失")
    draft.locator("[name='obligations[0].manner']").fill("现金当面支付")
    draft.locator("[name='obligations[0].due_on']").fill("2027-01-15")
    submit(page, draft.locator("button[type=submit]"), "agreement_drafted")
    # Every party, the mediator and the body's seal sign; the last signature makes it effective.
    for _ in range(6):
        pending = page.locator("form.sign")  # type: ignore[attr-defined]
        if pending.count() == 0:
            break
        submit(page, pending.first.locator("button[type=submit]"), "signed")
    assert page.locator(".agreement-effective").count() == 1  # type: ignore[attr-defined]
    agree = open_action(page, "agree")
    agree.locator("select[name=agreement_id]").select_option(index=1)
    submit(page, agree.locator("button[type=submit]"), "agree")
    assert "达成协议" in page.locator(".case-head .badge").inner_text()  # type: ignore[attr-defined]
    shot(page, "case-page", database)
    timeline = page.locator("#timeline li").evaluate_all("els => els.map(e => e.dataset.action)")  # type: ignore[attr-defined]
    assert {"register", "accept", "assign", "sign_for", "agree"} <= set(timeline)
    assert "达成协议" in page.locator("#timeline").inner_text()  # type: ignore[attr-defined]

    sign_in(page, "supervisor")
    assert page.url.endswith("/dashboard")  # type: ignore[attr-defined]
    row = page.locator("#latest-list tr", has_text=number)  # type: ignore[attr-defined]
    assert "达成协议" in row.inner_text()
    assert page.locator("svg.chart").count() >= 3  # type: ignore[attr-defined]
    shot(page, "dashboard", database)
    row.locator("a").click()
    assert page.url == case_url  # type: ignore[attr-defined]


# ---- 2. a wrong ID number ---------------------------------------------------------------------------


def test_wrong_id_number_is_refused_next_to_the_field_and_nothing_is_saved(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    marker = start_intake(page, "错误证件", "借款到期未还, 申请调解。")
    wrong = resident_id(2)[:-1] + ("0" if resident_id(2)[-1] != "0" else "1")
    fill_party(page, 0, role="applicant", name="王某某", id_number=wrong)
    fill_party(page, 1, role="respondent", name="赵某某")
    field = page.locator("[data-field='parties[0].id_number']")  # type: ignore[attr-defined]
    field.locator(".error").wait_for()
    assert "居民身份证号码无效" in field.locator(".error").inner_text()
    page.click("form#intake-form button[type=submit]")  # type: ignore[attr-defined]
    # The form comes back with the message under the field and everything typed still there.
    field = page.locator("[data-field='parties[0].id_number']")  # type: ignore[attr-defined]
    assert "居民身份证号码无效" in field.locator(".error").inner_text()
    assert field.locator("input").get_attribute("aria-invalid") == "true"
    assert page.locator("#f-parties-0--name").input_value() == "王某某"  # type: ignore[attr-defined]
    assert page.locator("#case-number").count() == 0  # type: ignore[attr-defined]
    shot(page, "intake-refused", database_of(request))
    assert api_cases(live_server, api_token(live_server, "clerk"), marker) == []


# ---- 3. only the actions the caller may take --------------------------------------------------------


@pytest.mark.parametrize("username", ["clerk", "supervisor", "mediator", "body-admin"])
def test_case_page_offers_exactly_the_actions_the_api_allows_the_caller(
    page: object, live_server: str, username: str
) -> None:
    token = api_token(live_server, username)
    headers = {"Authorization": f"Bearer {token}"}
    cases = httpx.get(f"{live_server}/v1/disputes", params={"limit": 100}, headers=headers, timeout=10)
    cases.raise_for_status()
    items = cases.json()["items"]
    assert items, f"{username} sees no cases"
    sign_in(page, username)
    offered_somewhere = False
    for case in items[:25]:
        allowed = httpx.get(f"{live_server}/v1/disputes/{case['id']}/actions", headers=headers, timeout=10)
        expected = {a["action"] for a in allowed.json() if a["allowed_for_caller"]}
        page.goto(f"/cases/{case['id']}")  # type: ignore[attr-defined]
        shown = set(page.locator("details.action").evaluate_all("els => els.map(e => e.dataset.action)"))  # type: ignore[attr-defined]
        posts = set(
            page.locator("#actions form[action*='/actions/']").evaluate_all(  # type: ignore[attr-defined]
                "els => els.map(e => e.getAttribute('action').split('/').pop())"
            )
        )
        assert shown == expected == posts, (case["case_number"], case["status"], shown, expected)
        offered_somewhere |= bool(expected)
    assert offered_somewhere, f"no case offered {username} any action"


# ---- 4. parties added and removed ------------------------------------------------------------------


def test_parties_added_and_removed_are_all_registered(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    """Two rows added, the first of them removed, one more added: the new row takes an index no
    row holds, so every party left on the form is registered, numbered as the clerk saw them."""
    marker = start_intake(page, "多方当事人", "合伙债务分担发生争执, 申请调解。")
    fill_party(page, 0, role="applicant", name="甲一")
    fill_party(page, 1, role="respondent", name="乙二")
    page.click("#add-party")  # type: ignore[attr-defined]
    page.click("#add-party")  # type: ignore[attr-defined]
    fill_party(page, 2, role="third_party", name="丙三")
    fill_party(page, 3, role="third_party", name="丁四")
    page.locator("fieldset.party[data-party='2'] .remove-party").click()  # type: ignore[attr-defined]
    page.click("#add-party")  # type: ignore[attr-defined]
    fill_party(page, 4, role="third_party", name="戊五")
    legends = page.locator("#parties fieldset.party > legend").all_inner_texts()  # type: ignore[attr-defined]
    assert [text.strip() for text in legends] == ["当事人 1", "当事人 2", "当事人 3", "当事人 4"]
    page.click("form#intake-form button[type=submit]")  # type: ignore[attr-defined]
    assert CASE_NUMBER.match(page.locator("#case-number").inner_text().strip())  # type: ignore[attr-defined]
    [case] = api_cases(live_server, api_token(live_server, "clerk"), marker)
    assert [p["name"] for p in case["parties"]] == ["甲一", "乙二", "丁四", "戊五"]  # type: ignore[index,union-attr]


def test_an_agents_party_is_chosen_among_the_rows_and_an_organisations_representative_is_asked_for(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    """法释〔2011〕5号 Art. 3; 民事诉讼法 Art. 51: the legal representative shows for an organisation, the
    party an agent acts for for an agent, chosen among the rows as numbered; a row removed is no
    longer a choice, and a choice after it follows its row."""
    marker = start_intake(page, "委托代理", "买卖合同货款未付, 申请调解。")
    fill_party(page, 0, role="applicant", name="甲一")
    fill_party(page, 1, role="respondent", name="乙公司")
    legal = page.locator("[data-field='parties[1].legal_representative']")  # type: ignore[attr-defined]
    assert legal.is_hidden()
    page.select_option("#f-parties-1--kind", "organisation")  # type: ignore[attr-defined]
    assert legal.is_visible()
    page.fill("#f-parties-1--legal_representative", "王五")  # type: ignore[attr-defined]
    for _ in range(3):
        page.click("#add-party")  # type: ignore[attr-defined]
    fill_party(page, 2, role="third_party", name="丙三")
    fill_party(page, 3, role="third_party", name="丁四")
    assert page.locator("[data-field='parties[4].represents']").is_hidden()  # type: ignore[attr-defined]
    fill_party(page, 4, role="agent", name="代理人周某")
    assert page.locator("[data-field='parties[4].represents']").is_visible()  # type: ignore[attr-defined]
    assert page.locator("[data-field='parties[3].represents']").is_hidden()  # type: ignore[attr-defined]
    page.select_option("#f-parties-4--represents", "3")  # type: ignore[attr-defined]  # 当事人 4, 丁四
    page.locator("fieldset.party[data-party='2'] .remove-party").click()  # type: ignore[attr-defined]
    choice = page.locator("#f-parties-4--represents")  # type: ignore[attr-defined]
    assert choice.locator("option").all_inner_texts() == ["—", "当事人 1", "当事人 2", "当事人 3", "当事人 4"]
    assert choice.input_value() == "2"  # still 丁四, now 当事人 3
    shot(page, "intake-agent", database_of(request))
    page.click("form#intake-form button[type=submit]")  # type: ignore[attr-defined]
    assert CASE_NUMBER.match(page.locator("#case-number").inner_text().strip())  # type: ignore[attr-defined]
    [case] = api_cases(live_server, api_token(live_server, "clerk"), marker)
    parties: list[dict[str, object]] = case["parties"]  # type: ignore[assignment]
    assert [p["name"] for p in parties] == ["甲一", "乙公司", "丁四", "代理人周某"]
    assert parties[1]["legal_representative"] == "王五"
    assert parties[3]["represents_party_id"] == parties[2]["id"]


# ---- 5. a phone's screen ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/lookup", "/apply", "/login"])
def test_the_residents_pages_fit_a_phones_screen(
    page: object, live_server: str, request: pytest.FixtureRequest, path: str
) -> None:
    page.set_viewport_size({"width": 375, "height": 740})  # type: ignore[attr-defined]
    page.goto(path)  # type: ignore[attr-defined]
    # Nothing wider than the screen, and the menu's items each on one line.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # type: ignore[attr-defined]
    heights = page.locator("header.top nav a").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().height)"
    )  # type: ignore[attr-defined]
    assert heights and max(heights) < 40, heights
    shot(page, f"phone{path.replace('/', '-')}", database_of(request))


# ---- 6. a session that ends while the form is filled in --------------------------------------------


def test_a_session_ended_while_typing_is_said_before_the_form_is_sent_and_nothing_typed_is_lost(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    marker = start_intake(page, "会话过期", "借款到期未还, 申请调解。")
    fill_party(page, 0, role="applicant", name="钱某某")
    fill_party(page, 1, role="respondent", name="孙某某")
    session = [c for c in page.context.cookies() if c["name"] == "mediation_session"]  # type: ignore[attr-defined]
    page.context.clear_cookies(name="mediation_session")  # type: ignore[attr-defined]  # the token ran out
    page.click("form#intake-form button[type=submit]")  # type: ignore[attr-defined]
    page.locator(".session-expired").wait_for()  # type: ignore[attr-defined]
    assert "在新窗口重新登录" in page.locator(".session-expired").inner_text()  # type: ignore[attr-defined]
    assert page.url.endswith("/intake")  # type: ignore[attr-defined]
    assert page.locator("#f-parties-0--name").input_value() == "钱某某"  # type: ignore[attr-defined]
    shot(page, "intake-session-expired", database_of(request))
    page.context.add_cookies(session)  # type: ignore[attr-defined]  # signed in again, in another tab
    page.click("form#intake-form button[type=submit]")  # type: ignore[attr-defined]
    assert CASE_NUMBER.match(page.locator("#case-number").inner_text().strip())  # type: ignore[attr-defined]
    assert len(api_cases(live_server, api_token(live_server, "clerk"), marker)) == 1


def test_an_action_form_sent_after_the_session_ended_keeps_its_reason(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    """The case page's forms are checked as the intake form is: the reason typed stays."""
    sign_in(page, "clerk")
    page.goto("/queue?tab=registered")  # type: ignore[attr-defined]
    page.locator("#case-list a").first.click()  # type: ignore[attr-defined]
    accept = open_action(page, "accept")
    reason = "材料齐全, 双方均同意调解, 予以受理。"
    accept.locator("textarea[name=note]").fill(reason)  # type: ignore[attr-defined]
    session = [c for c in page.context.cookies() if c["name"] == "mediation_session"]  # type: ignore[attr-defined]
    page.context.clear_cookies(name="mediation_session")  # type: ignore[attr-defined]
    accept.locator("button[type=submit]").click()  # type: ignore[attr-defined]
    accept.locator(".session-expired").wait_for()  # type: ignore[attr-defined]
    assert accept.locator("textarea[name=note]").input_value() == reason  # type: ignore[attr-defined]
    assert "/cases/" in page.url and "done=" not in page.url  # type: ignore[attr-defined]
    assert session  # it was there before it ran out


@pytest.mark.parametrize(("username", "path"), [("clerk", "/queue?tab=all"), ("supervisor", "/dashboard")])
def test_the_staff_pages_scroll_only_within_their_tables_on_a_phone(
    page: object, live_server: str, request: pytest.FixtureRequest, username: str, path: str
) -> None:
    sign_in(page, username)
    page.set_viewport_size({"width": 375, "height": 740})  # type: ignore[attr-defined]
    page.goto(path)  # type: ignore[attr-defined]
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # type: ignore[attr-defined]
    shot(page, f"phone-{username}", database_of(request))


def test_the_dashboards_charts_are_legible_on_a_phone(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    """At a phone's width each chart keeps its size and scrolls sideways in its card: its words
    are drawn at a readable size, not shrunk with the chart to a few pixels."""
    sign_in(page, "supervisor")
    page.set_viewport_size({"width": 375, "height": 740})  # type: ignore[attr-defined]
    page.goto("/dashboard")  # type: ignore[attr-defined]
    sizes = page.locator("svg.chart text").evaluate_all(  # type: ignore[attr-defined]
        "els => els.map(e => e.getScreenCTM().a * parseFloat(getComputedStyle(e).fontSize))"
    )
    assert sizes and min(sizes) >= 11, sorted(sizes)[:5]
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # type: ignore[attr-defined]
    shot(page, "phone-dashboard-charts", database_of(request))


def test_a_label_on_the_case_page_focuses_the_field_of_its_own_form(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    """Several forms ask for a reason: clicking one form's label puts the cursor in that form."""
    sign_in(page, "clerk")
    page.goto("/queue?tab=registered")  # type: ignore[attr-defined]
    page.locator("#case-list a").first.click()  # type: ignore[attr-defined]
    shown = page.locator("details.action").evaluate_all("els => els.map(e => e.dataset.action)")  # type: ignore[attr-defined]
    asking = [a for a in shown if page.locator(f"details.action[data-action='{a}'] [name=reason]").count()]  # type: ignore[attr-defined]
    assert len(asking) >= 2, shown
    for action in asking:
        details = open_action(page, action)
        details.locator("label", has_text="理由").first.click()  # type: ignore[attr-defined]
        focused = page.evaluate(  # type: ignore[attr-defined]
            "() => document.activeElement.closest('details.action')?.dataset.action"
        )
        assert focused == action, (action, focused)


def test_a_paste_longer_than_a_field_takes_says_how_much_was_left_out(
    page: object, live_server: str, request: pytest.FixtureRequest
) -> None:
    """The browser cuts a paste at the field's limit without a word; the page says it happened."""
    sign_in(page, "clerk")
    page.goto("/intake")  # type: ignore[attr-defined]
    field = page.locator("#f-description")  # type: ignore[attr-defined]
    limit = int(field.get_attribute("maxlength"))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])  # type: ignore[attr-defined]
    page.evaluate("text => navigator.clipboard.writeText(text)", "借" * (limit + 37))  # type: ignore[attr-defined]
    field.click()
    page.keyboard.press("Control+V")  # type: ignore[attr-defined]
    note = page.locator("#f-description-length")  # type: ignore[attr-defined]
    note.wait_for()
    assert len(field.input_value()) == limit
    assert f"{limit} 字的上限" in note.inner_text() and "末尾 37 字没有粘贴进来" in note.inner_text()
    assert "f-description-length" in (field.get_attribute("aria-describedby") or "")
    shot(page, "intake-paste-cut", database_of(request))
    # Shortened by hand, the field counts what it holds.
    field.press("End")
    for _ in range(5):
        field.press("Backspace")
    assert note.inner_text() == f"已输入 {limit - 5} / {limit} 字"
    # A paste that fits says nothing of a cut.
    page.evaluate("text => navigator.clipboard.writeText(text)", "款")  # type: ignore[attr-defined]
    page.keyboard.press("Control+V")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "n => document.getElementById('f-description-length').textContent.includes(n)",
        arg=f"{limit - 4} / {limit}",
    )
    assert "没有粘贴进来" not in note.inner_text()
    # A cell copied from a spreadsheet ends with a line break, which a one-line box drops: filled to
    # its limit by it, the box lost nothing.
    name = page.locator("#f-parties-0--name")  # type: ignore[attr-defined]
    name_limit = int(name.get_attribute("maxlength"))
    page.evaluate("text => navigator.clipboard.writeText(text)", "名" * name_limit + "\r\n")  # type: ignore[attr-defined]
    name.click()
    page.keyboard.press("Control+V")  # type: ignore[attr-defined]
    name_note = page.locator("#f-parties-0--name-length")  # type: ignore[attr-defined]
    name_note.wait_for()
    assert name.input_value() == "名" * name_limit
    assert name_note.inner_text() == f"已输入 {name_limit} / {name_limit} 字"
