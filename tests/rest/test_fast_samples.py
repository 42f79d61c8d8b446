"""The fast REST reads (app/rest/fast.py) against Litestar, as in test_fast.py,
on data whose every field is set (tests/full_samples.py: the round-trip
samples, and every value at the bounds the command structs declare)."""

from __future__ import annotations

from tests.api import Api
from tests.conftest import bearer, make_token
from tests.full_samples import details_of_every_field, seed_every_field
from tests.rest.test_fast import ANSWERED, reads_of, stable
from tests.rest.test_fast import two_apps as two_apps  # the fixture: fast reads on, off


async def test_the_fast_answer_is_litestars_on_every_field(two_apps, new_user):
    (fast_app, fast), (_slow_app, slow) = two_apps
    user = new_user()
    ids = await seed_every_field(Api(fast, user))
    await details_of_every_field(Api(slow, user), ids)
    headers = bearer(make_token(user))
    reads = reads_of(fast_app)
    urls = {url.format(*ids) for url in ANSWERED} | {
        f"/interview-sessions/{sid}/details" for sid in ids
    }
    for url in sorted(urls):
        before = reads.answered
        a = await fast.get(url, headers=headers)
        b = await slow.get(url, headers=headers)
        assert b.status_code == 200, b.text
        assert stable(a) == stable(b), url
        assert reads.answered == before + 1, f"the fast path should have answered {url}"
