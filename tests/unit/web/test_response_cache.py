"""The instruments' answer cache: a query's body is made once, kept by size, and the same query finds it."""

from pydantic import BaseModel

from app.web.response_cache import ResponseCache, query_key
from app.web.schemas import GuidanceQuery


class Answer(BaseModel):
    text: str


def test_a_query_is_answered_once_and_then_from_the_cache():
    cache, made = ResponseCache(), []

    def make():
        made.append(1)
        return Answer(text="x" * 10)

    first, second = cache.answer(("a", 1), make), cache.answer(("a", 1), make)
    assert first.body == second.body == b'{"text":"xxxxxxxxxx"}'
    assert first.media_type == "application/json"
    assert len(made) == 1 and (cache.hits, cache.misses) == (1, 1)


def test_the_least_recently_used_answers_go_once_the_size_is_spent():
    cache = ResponseCache(max_bytes=3 * 30)  # room for three 30-byte bodies ({"text":"..."} with 19 letters)
    for key in "abc":
        cache.answer(key, lambda: Answer(text="y" * 19))
    cache.answer("a", lambda: Answer(text="never made"))  # a is used again, so b is now the oldest
    cache.answer("d", lambda: Answer(text="y" * 19))
    assert len(cache) == 3 and cache.size_bytes == 90
    assert cache.answer("a", lambda: Answer(text="remade")).body != b'{"text":"remade"}'
    assert cache.answer("b", lambda: Answer(text="remade")).body == b'{"text":"remade"}'


def test_an_answer_bigger_than_the_cache_is_sent_but_not_kept():
    cache = ResponseCache(max_bytes=10)
    assert cache.answer("big", lambda: Answer(text="z" * 50)).body.startswith(b'{"text":"zzz')
    assert len(cache) == 0 and cache.size_bytes == 0


def test_queries_that_validate_alike_share_a_key():
    a = GuidanceQuery.model_validate({"scale": "7.50", "seed": "0"})
    b = GuidanceQuery.model_validate({"seed": 0, "scale": 7.5})
    assert query_key("guidance", a) == query_key("guidance", b)
    assert query_key("guidance", a) != query_key("guidance", GuidanceQuery(scale=7.25))
    assert query_key("guidance", a) != query_key("coherence", a)
    hash(query_key("guidance", a))
