import pytest

from service.ratelimit import RateLimited, RateLimiter


def test_each_key_gets_its_own_budget_which_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.take("platform")
    with pytest.raises(RateLimited) as limited:
        limiter.take("platform")
    assert limited.value.retry_after == 20  # one request every 20 s at 3 per minute
    limiter.take("ops")  # another key is not affected
    now[0] = 20.0
    limiter.take("platform")
    with pytest.raises(RateLimited):
        limiter.take("platform")
