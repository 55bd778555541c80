"""The async answer: a hit from the event loop, a miss made on a worker thread, misses one at a time."""

import threading
import time

import anyio
from pydantic import BaseModel

from app.web.response_cache import ResponseCache


class Answer(BaseModel):
    text: str


def test_misses_are_made_off_the_loop_one_at_a_time_and_hits_are_not_made_again():
    cache, running, most, threads = ResponseCache(), [0], [0], set()
    lock = threading.Lock()

    def make(i: int):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            threads.add(threading.get_ident())
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return Answer(text=str(i))

    async def main():
        loop_thread = threading.get_ident()
        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(cache.answer_async, i, lambda i=i: make(i))
        again = await cache.answer_async(3, lambda: make(99))
        return loop_thread, again

    # On a thread of its own: a session's browser (Playwright's sync API) may hold a running loop on this one.
    out = {}
    runner = threading.Thread(target=lambda: out.update(result=anyio.run(main)))
    runner.start()
    runner.join()
    loop_thread, again = out["result"]
    assert most[0] == 1 and loop_thread not in threads
    assert again.body == b'{"text":"3"}' and (cache.hits, cache.misses) == (1, 6)
