"""Keys that do not open the data a database holds never start the service: a secrets file lost or
moved and generated anew, or another store's values, would leave every ID and phone number
unreadable while the service said it was ready. The commands that work with personal data refuse
(exit 2, saying what to do); `pii status` is left to diagnose. A secrets file where earlier releases
kept it (the working directory) is read rather than replaced; on PostgreSQL the refusal names it."""

from __future__ import annotations

from pathlib import Path

from tests.test_configuration import POSTGRES, configuration_error, mediation


async def _demo(folder: Path, **env: str) -> str:
    database = f"sqlite+aiosqlite:///{folder / 'data' / 'm.db'}"
    (folder / "data").mkdir()
    for command in (("migrate",), ("seed-demo",)):
        code, out, err = await mediation(folder, *command, MEDIATION_DATABASE_URL=database, **env)
        assert code == 0, (command, out, err)
    return database


async def test_keys_generated_anew_beside_old_data_are_refused(tmp_path: Path) -> None:
    database = await _demo(tmp_path)
    kept = tmp_path / "data" / "mediation.secrets.json"
    assert kept.is_file()
    kept.unlink()  # the file lost: the next start would generate other keys
    code, out, err = await mediation(tmp_path, "clocks", MEDIATION_DATABASE_URL=database)
    assert code == 2, (out, err)
    assert "do not open the data this database holds" in err and "Traceback" not in err
    # The diagnosis still runs, and says what the keys open.
    code, out, err = await mediation(tmp_path, "pii", "status", "--verify", MEDIATION_DATABASE_URL=database)
    assert code == 1, (out, err)


async def test_the_secrets_file_where_earlier_releases_kept_it_is_read(tmp_path: Path) -> None:
    former = tmp_path / "mediation.secrets.json"
    database = await _demo(tmp_path, MEDIATION_SECRETS_FILE=str(former))
    # Upgraded: the variable no longer set, the file where the former default put it.
    code, out, err = await mediation(tmp_path, "clocks", MEDIATION_DATABASE_URL=database)
    assert code == 0, (out, err)
    assert "where earlier releases kept them" in err
    assert not (tmp_path / "data" / "mediation.secrets.json").exists()


async def test_on_postgresql_the_refusal_names_a_secrets_file_found(tmp_path: Path) -> None:
    (tmp_path / "mediation.secrets.json").write_text("{}", encoding="utf-8")
    refused = await mediation(tmp_path, "migrate", MEDIATION_DATABASE_URL=POSTGRES)
    configuration_error(refused, "a secrets file exists at", str(tmp_path / "mediation.secrets.json"))
