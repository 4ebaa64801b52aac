"""TaskSet: background tasks held until they end, cancelled together."""

import asyncio

from core.chord import TaskSet
from core.chord.sim import run


class TestTaskSet:
    def test_task_set__holds_tasks_until_they_end_and_forgets_them(self):
        async def main():
            tasks = TaskSet()
            done = asyncio.Event()
            task = tasks.spawn(done.wait())
            assert len(tasks) == 1 and list(tasks) == [task]
            done.set()
            await task
            await asyncio.sleep(0)
            assert len(tasks) == 0

        run(main())

    def test_cancel_all__cancels_and_waits_for_every_task(self):
        async def main():
            tasks = TaskSet()
            ended = []

            async def forever(i):
                try:
                    await asyncio.sleep(3600)
                finally:
                    ended.append(i)

            for i in range(3):
                tasks.spawn(forever(i))
            await asyncio.sleep(0)
            await tasks.cancel_all()
            assert sorted(ended) == [0, 1, 2]
            assert len(tasks) == 0

        run(main())

    def test_cancel_all__from_one_of_its_own_tasks_does_not_wait_on_itself(self):
        async def main():
            tasks = TaskSet()
            other = tasks.spawn(asyncio.sleep(3600))

            async def stopper():
                await tasks.cancel_all()
                return "finished"

            assert await asyncio.wait_for(tasks.spawn(stopper()), 10) == "finished"
            assert other.cancelled()

        run(main())
