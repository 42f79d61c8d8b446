"""SQLite's search by trigrams (migration 0009): the FTS5 table the triggers
keep equal to the sessions, and a page by trigrams equal to the walk's, page
by page, for every kind of term (rare, common, absent, too short for a
trigram, quotes, wildcards, accents), with filters, after updates and deletes."""

from __future__ import annotations

import re
import sqlite3

import pytest

from app.db import repositories, statements
from tests.api import Api

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')
TITLES = [
    "Senior engineer",
    "Data scientist",
    'The "quoted" role',
    "100% remote_ok",
    "Ingénieur logiciel",
    "Platform engineer",
    "Quokka wrangler",
]
TERMS = ["engineer", "quokka", "zebrafish", "en", '"quoted"', "0% r", "e_o", "génie", "ÉNIEUR"]


def sqlite_path(db_url: str) -> str:
    return db_url.split("///", 1)[1]


async def ids(api: Api, query: str) -> list[str]:
    """Every session a search lists, following its pages (rel=next links)."""
    out: list[str] = []
    url = f"/interview-sessions?{query}"
    while True:
        r = await api.request("GET", url)
        assert r.status_code == 200, r.text
        out += [s["id"] for s in r.json()]
        link = r.headers.get("link")
        if link is None:
            return out
        url = LINK.match(link)["url"]  # type: ignore[index]


def index_agrees(path: str) -> None:
    """For each term, the FTS5 table's rows are exactly those whose text holds it."""
    with sqlite3.connect(path) as conn:
        for term in ("engineer", "quokka", "remote_ok", "ingénieur", "zebrafish", "renamed"):
            by_index = {
                r[0]
                for r in conn.execute(
                    "SELECT rowid FROM interview_sessions_search "
                    "WHERE interview_sessions_search MATCH ?",
                    [statements.trigram_phrase(term)],
                )
            }
            by_text = {
                r[0]
                for r in conn.execute(
                    "SELECT rowid FROM interview_sessions WHERE instr(search_text, ?) > 0", [term]
                )
            }
            assert by_index == by_text, term


async def test_a_search_by_trigrams_lists_what_the_walk_lists(
    client, new_user, db_url, app_clock, monkeypatch
):
    api, other = Api(client, new_user()), Api(client, new_user())
    made = []
    for n in range(21):
        app_clock.advance(minutes=1)
        title = TITLES[n % len(TITLES)]
        made.append((await api.new_session(jobContext={"title": title, "company": "C"}))["id"])
        if n % 3:  # at most 10 may be active at once
            await api.set_status(made[-1], "pause" if n % 3 == 1 else "complete")
        mirror = await other.new_session(jobContext={"title": title, "company": "C"})
        await other.set_status(mirror["id"], "complete")  # never listed
    # Changes the triggers follow: a new text, and sessions gone.
    r = await api.update(made[3], {"jobContext": {"title": "Renamed quokka", "company": "C"}})
    assert r.status_code == 200, r.text
    r = await api.update(made[6], {"jobContext": {"title": "Renamed", "company": "C"}})
    assert r.status_code == 200, r.text
    for gone in (made[1], made[13]):
        assert (await api.delete(gone)).status_code == 204
    index_agrees(sqlite_path(db_url))

    for term in TERMS:
        for extra in ("", "&status=paused", "&limit=2", "&status=active&limit=3"):
            query = f"q={term}{extra}".replace("%", "%25").replace('"', "%22")
            monkeypatch.setattr(statements, "TRIGRAM_BOUND", 0)  # every search walks
            walked = await ids(api, query)
            monkeypatch.setattr(statements, "TRIGRAM_BOUND", 10**6)  # every one by trigrams
            assert await ids(api, query) == walked, query
            monkeypatch.undo()
            assert await ids(api, query) == walked, query  # the bound's own choice
    # What the walk found is right, too (a few checked by hand).
    monkeypatch.setattr(statements, "TRIGRAM_BOUND", 10**6)
    assert await ids(api, "q=zebrafish") == []
    assert await ids(api, "q=renamed") == [made[6], made[3]]
    assert made[6] not in await ids(api, "q=quokka")
    assert made[3] in await ids(api, "q=quokka")
    assert made[13] not in await ids(api, "q=engineer")


async def test_a_rare_term_is_searched_by_trigrams_and_a_common_one_by_the_walk(
    client, new_user, monkeypatch, count_statements
):
    """The probe decides per term: fewer sessions in all than the bound hold
    it, by trigrams; as many or more, the walk (the statements SQLite ran)."""
    api = Api(client, new_user())
    for n in range(6):
        title = "Common role" if n else "Rare quokka role"
        await api.new_session(jobContext={"title": title, "company": "C"})
    monkeypatch.setattr(statements, "TRIGRAM_BOUND", 3)
    monkeypatch.setattr(repositories, "TERM_COUNTS", {})

    def ran() -> list[str]:
        found = [s for s in count_statements.queries if "interview_sessions" in s]
        count_statements.statements.clear()
        return found

    ran()
    assert len(await ids(api, "q=quokka")) == 1
    probe, page = ran()
    assert "count" in probe and "MATCH" in probe, probe
    assert "rowid IN" in page and "interview_sessions_search" in page, page
    assert len(await ids(api, "q=common")) == 5
    probe, page = ran()
    assert "count" in probe and "MATCH" in probe, probe
    assert "rowid IN" not in page and "MATCH" not in page, page
    assert len(await ids(api, "q=ro")) == 6  # under 3 characters: no trigram, the walk
    (page,) = ran()
    assert "MATCH" not in page, page
    # The same terms again: their counts are reused (for TERM_COUNT_SECONDS).
    assert len(await ids(api, "q=quokka")) == 1
    (page,) = ran()
    assert "rowid IN" in page, page
    assert len(await ids(api, "q=common&limit=2")) == 5
    assert all("MATCH" not in page for page in ran())
    # Counted to a lower bound than asked now: counted again.
    monkeypatch.setattr(statements, "TRIGRAM_BOUND", 10)
    assert len(await ids(api, "q=common")) == 5
    probe, page = ran()
    assert "count" in probe and "rowid IN" in page, (probe, page)


async def test_what_breaks_the_link_to_the_sessions_is_repaired_by_the_next_migration(
    client, new_user, db_url, monkeypatch
):
    """The trigram table refers to the sessions' rowids. A copy that renumbers
    them (``sqlite3 .dump`` into a new file) or a table rebuild that drops the
    triggers breaks it without an error; `interview-api migrate` and `serve`
    (app/db/migrate.py) put it back."""
    from app.db import search_index
    from app.db.migrate import upgrade

    api = Api(client, new_user())
    made = []
    for n in range(8):
        made.append(
            (await api.new_session(jobContext={"title": f"Keeper {n}", "company": "C"}))["id"]
        )
        await api.set_status(made[-1], "complete")
    for gone in made[:4]:  # gaps in the rowids
        assert (await api.delete(gone)).status_code == 204
    path = sqlite_path(db_url)
    with sqlite3.connect(path) as conn:  # renumbered, as a dump into a new file would
        for new, (old,) in enumerate(
            conn.execute("SELECT rowid FROM interview_sessions ORDER BY rowid").fetchall(), 1
        ):
            conn.execute("UPDATE interview_sessions SET rowid = ? WHERE rowid = ?", [new, old])
        conn.execute("DROP TRIGGER interview_sessions_search_insert")
    monkeypatch.setattr(statements, "TRIGRAM_BOUND", 10**6)
    monkeypatch.setattr(repositories, "TERM_COUNTS", {})
    assert await ids(api, "q=keeper") != made[:3:-1]  # broken: what it lists is wrong

    await upgrade(db_url)
    with sqlite3.connect(path) as conn:
        names = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        assert set(search_index.TRIGGERS) <= names
        assert (
            conn.execute(
                "INSERT INTO interview_sessions_search(interview_sessions_search) VALUES ('integrity-check')"
            ).fetchall()
            == []
        )
    assert await ids(api, "q=keeper") == made[:3:-1]
    late = await api.new_session(jobContext={"title": "Keeper late", "company": "C"})
    assert await ids(api, "q=keeper late") == [late["id"]]
    index_agrees(path)
    # In step: the next migration changes nothing.
    with sqlite3.connect(path) as conn:
        assert search_index.repair(lambda sql: conn.execute(sql).fetchall(), conn.execute) == []
