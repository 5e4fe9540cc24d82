import asyncio
import gc

import pytest

from mediation.app import create_app
from mediation.core.clock import FrozenClock
from mediation.core.settings import Settings


async def test_intake_then_read(api):
    created = await api.intake()
    assert created["status"] == "registered"
    assert created["version"] == 1
    assert len(created["query_code"]) == 8
    fetched = await api.get(created)
    assert fetched["case_number"] == created["case_number"]


@pytest.mark.parametrize("after", [0.2, 0])
async def test_each_process_freezes_what_its_first_requests_built_once_it_is_warm(
    settings: Settings, clock: FrozenClock, after: float
) -> None:
    """What a process builds at its first requests and keeps is frozen too, once, `after` seconds
    in (0: never), so that full collections stay short (docs/benchmarks.md)."""
    app = create_app(settings.model_copy(update={"gc_freeze_after_seconds": after}), clock)
    async with app.router.lifespan_context(app):
        kept = [[n] for n in range(1_000)]  # stands for the state the first requests build
        await asyncio.sleep(0.6)
        watched = {id(o) for o in gc.get_objects()}  # the permanent generation is not listed
        assert all((id(o) in watched) == (not after) for o in kept)
