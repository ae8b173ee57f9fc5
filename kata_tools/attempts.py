"""Run learner code that talks to the database, and report what it left behind in words.

A MissingGreenlet abandons a driver coroutine, and a forgotten `await` abandons the coroutine it
made: each warns when it is freed, and under this project's warnings-as-errors setting that
would error some later, innocent spec. `attempt()` frees them while recording the warnings, so
the spec that ran the code can say "called without await" or explain the MissingGreenlet.
The recognition of a coroutine never awaited is shared: `kata_tools.probes.unawaited_in`.
"""

from __future__ import annotations

import gc
import inspect
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.exc import MissingGreenlet

from kata_tools import i18n
from kata_tools.catalog import kata_of
from kata_tools.loader import display
from kata_tools.probes import unawaited_in


@dataclass
class Attempt:
    """What happened when learner code ran: its value, or the error it raised, as plain text."""

    value: object = None
    error: str = ""  # exception class name, "" if none
    message: str = ""
    where: str = ""  # the learner's file:line that raised
    unawaited: list = field(default_factory=list)  # coroutines created and never awaited

    @property
    def missing_greenlet(self) -> bool:
        return self.error == MissingGreenlet.__name__ or MissingGreenlet.__name__ in self.message

    def fail_if_crashed(self, rule: str) -> None:
        """Fail the spec in words (kata_tools/messages/plugin.toml) if the code crashed or forgot an await."""
        say = i18n.tool("plugin")
        if self.unawaited:
            pytest.fail(say("attempt-not-awaited", call=self.unawaited[0], rule=rule), pytrace=False)
        if self.error:
            key, where = ("attempt-crashed-at", self.where) if self.where else ("attempt-crashed", "")
            pytest.fail(
                say(key, error=self.error, where=where, message=self.message, rule=rule), pytrace=False
            )


async def attempt(run) -> Attempt:
    """Run `run()` (and await it if it returns an awaitable), catching what it leaves behind.

    A MissingGreenlet abandons a driver coroutine, and a forgotten `await` abandons the coroutine
    it made: unawaited, each warns when it is freed, which under this project's warnings-as-errors
    setting errors some later test. Here they are freed while the warnings are recorded (a
    coroutine held by an error's traceback only by a garbage collection, run after an error), and
    the spec reports them in words instead.
    """
    outcome, returned = Attempt(), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = run()
            outcome.value = await value if inspect.isawaitable(value) else value
            if inspect.iscoroutine(outcome.value):  # `return db.get(...)`: a coroutine, not a row
                returned.append(outcome.value.__qualname__)
                outcome.value.close()  # closed, it never warns
                outcome.value = None
        except NotImplementedError:
            raise  # a TODO: the kata plugin says "not written yet" and where
        except Exception as e:
            outcome.error, outcome.message = type(e).__name__, str(e).split("\n(Background")[0]
            frames = [
                f
                for f in traceback.extract_tb(e.__traceback__)
                if kata_of(Path(f.filename)) and not Path(f.filename).name.startswith("test_")
            ]
            if frames:
                outcome.where = f"{display(Path(frames[-1].filename))}:{frames[-1].lineno}"
            del e
        if outcome.error:
            gc.collect()  # what the error abandoned goes now, while its warnings are recorded
    outcome.unawaited = returned + [
        u.name
        for u in unawaited_in(caught)
        if u.name.startswith(("AsyncSession.", "AsyncConnection.", "AsyncEngine."))
    ]
    return outcome
