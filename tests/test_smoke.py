async def test_intake_then_read(api):
    created = await api.intake()
    assert created["status"] == "registered"
    assert created["version"] == 1
    assert len(created["query_code"]) == 8
    fetched = await api.get(created)
    assert fetched["case_number"] == created["case_number"]
