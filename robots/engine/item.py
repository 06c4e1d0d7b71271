"""One work item's lifecycle, written once for every robot.

    async with run.item(key, lane=lane, acting=RULES) as item:
        live = await item.attempt(lambda page: read(page))   # retried, evidence per failure
        ...
        await item.act(Action(...), press=..., read_live=...)  # the acting protocol
        item.done(...)

On leaving the block: a clean exit is *done* (or whatever the robot recorded); a
``BusinessException`` hands the item to a person with its code (never retried); a system
exception that outlived its retries is recorded with ``give_up`` and its evidence (trace
chunk, a masked screenshot of each surface per failed attempt). Anything else is a bug and
propagates.

The acting protocol (mark *acting* in the ledger → press → verify → *done*) keeps the
promise "nothing done twice, no cap overrun": once an item is *acting*, the money it reserved
stays reserved until a live read proves the action did not land. A refusal after our own
press (a browser that silently re-sent a request that had already landed) is settled by
reading the record: if it shows what our action produces, the action is ours, done and
counted.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from loguru import logger

from robots.errors import BusinessException, PageError, first_line
from robots.ledger import State
from robots.runtime.retry import TEMPORARY

if TYPE_CHECKING:
    from robots.engine.batch import ActBatch
    from robots.engine.run import RobotRun
    from robots.ledger import ItemView

T = TypeVar("T")
R = TypeVar("R")
P = TypeVar("P")


class Count(enum.StrEnum):
    """Counts every robot keeps the same way (robots add their own StrEnum beside these)."""

    HANDED_TO_PERSON = "handed_to_person"  # business exceptions
    SYSTEM_EXCEPTION = "system_exception"  # outlived their retries (or acting, unsettled)
    NOT_STARTED = "not_started"  # left pending because the run was asked to stop
    SETTLED_ON_RESUME = "settled_on_resume"  # acting items a killed run left, now settled
    UNCHANGED = "unchanged_since_last_run"  # claimed before and nothing changed
    HANDLED_ELSEWHERE = "handled_elsewhere"  # someone else did it


class Outcome(enum.StrEnum):
    """What became of one item in this run."""

    DONE = "done"
    HANDED_OVER = "handed_over"  # a business exception: a person decides
    SYSTEM_EXCEPTION = "system_exception"  # retried next run (or settled, if it was acting)
    QUEUED = "queued"  # acting, its press left to a batch (engine/batch.py) that settles it


# what an item's ending counted as, kept with its row: a cluster worker killed between writing
# the ending and noting its counts leaves them readable (robots.cluster.worker)
ENDED_AS = "ended_as"


class Verdict(enum.StrEnum):
    """What a live read says about an action the ledger shows as *acting*."""

    LANDED = "landed"  # the record shows the state our action produces: ours
    NOT_LANDED = "not_landed"  # still pending as we read it: the action did not happen
    ELSEWHERE = "elsewhere"  # moved on some other way (someone else handled it)


@dataclass(frozen=True)
class ActingRules(Generic[R]):
    """What the engine needs to know about a robot's live records to settle an action."""

    judge: Callable[[str, R], Verdict]  # (the action recorded, the live record) -> verdict
    describe: Callable[[R], str]  # what the live record shows, for the ledger ("SUCCESS")
    fingerprint: Callable[[R], str | None] = lambda _live: None


@dataclass(frozen=True)
class Action:
    """One action about to be taken on an item."""

    name: str
    fingerprint: str  # the record as read right before acting
    amount_cents: int = 0  # money it moves (reserved against the daily cap)
    daily_cap_cents: int | None = None
    review: dict[str, Any] | None = None  # a person's decision: recorded, not cap-counted
    cap_scope: str = ""  # the cap counts the items whose keys begin so (all when empty)


class Surface(Protocol):
    """Something an item works on that can be photographed for evidence."""

    suffix: str

    async def shoot(self, path: Any) -> str | None: ...


@dataclass
class PageSurface:
    """The item's browser page (whichever page it is on now)."""

    item_page: Any
    suffix: str = ""

    async def shoot(self, path: Any) -> str | None:
        from robots.runtime.browser import screenshot

        return await screenshot(self.item_page.page, path)


@dataclass
class DesktopSurface:
    desktop: Any
    suffix: str = "-desktop"

    async def shoot(self, path: Any) -> str | None:
        shot: str | None = self.desktop.screenshot(path)
        return shot


@dataclass
class _PageHolder:
    """The page an item is on across its attempts (a failure may close and replace it)."""

    context: Any
    page: Any


@dataclass
class Acted:
    """How an action ended: landed (ours), or the record moved on another way."""

    verdict: Verdict
    live: Any  # the record after the action (None in a dry run)


@dataclass
class Item:
    """One item being worked in one run. Use through ``RobotRun.item``."""

    run: RobotRun
    key: str
    lane: Any = None  # a web Lane (context + page), if the item works in a browser
    acting: ActingRules[Any] | None = None
    name: str = ""
    surfaces: list[Surface] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    attempts: int = 0
    outcome: Outcome | None = None
    reason_code: str = ""
    message: str = ""
    exception: BaseException | None = None
    fingerprint: str | None = None  # the record as last read, kept with a hand-over
    # what the item's row in a workbook shows (ids, amounts, deadline, reasons...), kept in
    # the ledger with the item however it ends, so reports are written from the ledger
    # whatever happened to the run (`robots report`, the open-exceptions queue)
    row: dict[str, Any] = field(default_factory=dict)
    elsewhere: bool = False  # someone else moved the record on (``handled_elsewhere``)
    _not_ours: bool = False  # a live read proved an *acting* action did not land
    _page: Any = None

    def __post_init__(self) -> None:
        self.name = self.name or self.key.replace("/", "_").replace("|", "_").strip("_")
        if self.lane is not None:
            self._page = _PageHolder(self.lane.context, self.lane.page)
            self.surfaces.insert(0, PageSurface(self._page))

    @property
    def ledger_view(self) -> ItemView | None:
        return self.run.ledger.get(self.run.robot, self.key)

    # -- entering and leaving -----------------------------------------------------------------
    async def __aenter__(self) -> Item:
        for hook in self.run.hooks:
            hook.before_item(self)
        self._log_context = logger.contextualize(item=self.key)
        self._log_context.__enter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            return await self._leave(exc)
        finally:
            self._log_context.__exit__(None, None, None)
            if self.lane is not None and self._page is not None:
                self.lane.page = self._page.page
            if self.outcome is not None:
                for hook in self.run.hooks:
                    hook.after_item(self)

    async def _leave(self, exc: BaseException | None) -> bool:
        run = self.run
        temporary = isinstance(exc, TEMPORARY)
        if self.lane is not None:  # a trace of its retries is kept for a system exception
            keep = run.evidence_dir / f"{self.name}.trace.zip" if temporary else None
            kept = await self.lane.finish_trace(keep)
            self.evidence += [kept] if kept else []
        if exc is None:
            if self.outcome is None:
                self._ended_without_a_word()
            self.outcome = self.outcome or Outcome.DONE
            return False
        self.exception = exc
        if isinstance(exc, BusinessException):
            view = self.ledger_view
            if view is not None and view.state == State.ACTING and not self._not_ours:
                # the action may have landed and nothing proved otherwise: stay acting (its
                # money stays reserved) for the next run to settle from the live record
                self._unsettled(f"{first_line(exc)} (while acting; settled next run)")
                return True
            recheck = (view.details.get("recheck") if view is not None else None) or {}
            again = recheck.get("reason") == exc.code  # re-checked, and still the same reason
            counted: list[str] = [Count.UNCHANGED if again else Count.HANDED_TO_PERSON]
            by_reason = run.reason_counts.get(exc.code, run.reason_counts.get("*"))
            if by_reason:  # the robot's own name for this hand-over (unmatched, page_gone…)
                counted.append(by_reason)
            run.ledger.finish(
                run.robot,
                self.key,
                State.BUSINESS_EXCEPTION,
                run_id=recheck["run_id"] if again else run.run_id,
                reason_code=exc.code,
                message=str(exc),
                fingerprint=self.fingerprint,
                details={**(self._row_details() or {}), ENDED_AS: [str(c) for c in counted]},
            )
            self.outcome, self.reason_code, self.message = Outcome.HANDED_OVER, exc.code, str(exc)
            for name in counted:
                run.count(name)
            logger.info("handed to a person: {} ({})", exc.code, exc)
            return True
        if temporary:
            # an acting item stays acting (give_up): the next run settles it by reading
            message = run.ledger.give_up(
                run.robot,
                self.key,
                exc,
                run_id=run.run_id,
                evidence=self.evidence,
                details=self._row_details(),
            )
            self._system_exception(f"system exception after {self.attempts} attempts: {message}")
            self.message = message
            return True
        return False  # a bug: keep its traceback

    def _ended_without_a_word(self) -> None:
        """The block ended, nothing raised, and the robot recorded no ending: a check that
        found nothing to do ends done (nothing acted). An item marked *acting* (pressed, or
        queued for a batch) keeps its state: what settles it is the action's own path."""
        view = self.ledger_view
        if view is not None and view.state == State.PENDING:
            self.done(acted=False)

    def _unsettled(self, message: str) -> None:
        run = self.run
        run.ledger.note_problem(
            run.robot,
            self.key,
            run_id=run.run_id,
            reason_code="SYSTEM_ERROR",
            message=message,
            evidence=self.evidence,
            details=self._row_details(),
        )
        self._system_exception(message)

    def _row_details(self) -> dict[str, Any] | None:
        return {"row": dict(self.row)} if self.row else None

    def _system_exception(self, logged: str) -> None:
        """The item needs an operator (or the next run): counted, logged as an error."""
        self.outcome, self.reason_code, self.message = (
            Outcome.SYSTEM_EXCEPTION,
            "SYSTEM_ERROR",
            logged,
        )
        self.run.count(Count.SYSTEM_EXCEPTION)
        logger.error("{}", logged)

    # -- attempts -------------------------------------------------------------------------------
    async def attempt(self, step: Callable[[Any], Awaitable[T]], what: str = "") -> T:
        """Run ``step`` with bounded retries for system exceptions. Each failed attempt leaves
        evidence; a page the failure closed is replaced; a lost session is logged in again.
        ``step`` must be safe to repeat (start from the live record)."""
        run = self.run

        async def once() -> T:
            self.attempts += 1
            return await step(self._page.page if self._page is not None else None)

        async def failed(exc: BaseException) -> None:
            for hook in run.hooks:
                await hook.failed_attempt(self, self.attempts, exc)
            if self.lane is not None:  # the retries are traced; the trace is kept
                await self.lane.trace_retries()  # if the item ends a system exception
            if self._page is not None and self._page.page.is_closed():
                self._page.page = await self._page.context.new_page()

        return await run.retried(what or f"{run.robot} {self.key}", once, failed=failed)

    # -- the acting protocol -----------------------------------------------------------------
    def verdict(self, live: Any) -> Verdict | None:
        """If the ledger shows this item *acting* (an earlier attempt, or a killed run,
        pressed), what the live record says about that action; None when not acting."""
        view = self.ledger_view
        if view is None or view.state != State.ACTING or self.acting is None:
            return None
        verdict = self.acting.judge(view.action, live)
        self._not_ours = verdict != Verdict.LANDED
        return verdict

    @property
    def acting_action(self) -> str:
        view = self.ledger_view
        return view.action if view is not None else ""

    async def act(
        self,
        action: Action,
        *,
        press: Callable[[], Awaitable[Any]],
        read_live: Callable[[], Awaitable[Any]],
    ) -> Acted:
        """Mark *acting* (reserving money against the cap), press, and verify from the page.

        Raises ``BusinessException("DAILY_CAP_REACHED")`` when the cap is reached (nothing is
        pressed). A refusal after the press is settled by reading the live record: landed →
        ours; still pending as read → the refusal stands (money released); moved on another
        way → ``ELSEWHERE``. The same for the page after a press the shop took; one that still
        shows the record pending raises ``PageError`` (retried: the next attempt starts from
        the live record, via ``verdict``)."""
        rules = self._start_acting(action)
        run = self.run
        if run.dry_run:
            return Acted(Verdict.LANDED, None)
        try:
            after = await press()
        except BusinessException as refusal:
            live = await read_live()
            verdict = rules.judge(action.name, live)
            self._not_ours = verdict != Verdict.LANDED
            if verdict == Verdict.NOT_LANDED:
                raise
            logger.warning(
                "the shop refused {} ({}), but the record now shows {}: {}",
                action.name,
                refusal,
                rules.describe(live),
                "our action landed (counted as ours)"
                if verdict == Verdict.LANDED
                else "handled elsewhere",
            )
            return Acted(verdict, live)
        verdict = rules.judge(action.name, after)
        if verdict == Verdict.NOT_LANDED:  # an answer that shows nothing happened: read again
            raise PageError(
                f"after {action.name}, the page shows {rules.describe(after)}",
                item_id=self.key,
            )
        self._not_ours = verdict != Verdict.LANDED
        return Acted(verdict, after)

    def queue(self, action: Action, batch: ActBatch[P, Any], payload: P, *, again: Any) -> None:
        """Mark *acting* (reserving money against the cap, as ``act`` does) and leave the
        press to ``batch``, which settles the item from what the shop shows after it, or
        hands ``again`` back to the work loop for the per-item path. Not for dry runs (they
        press nothing: use ``act``)."""
        assert not self.run.dry_run, "a dry run presses nothing: use act"
        self._start_acting(action)
        batch.add(self.key, action.name, payload, row=dict(self.row), again=again)
        self.outcome = Outcome.QUEUED

    def _start_acting(self, action: Action) -> ActingRules[Any]:
        """Mark *acting*, reserving the money against the day's cap (a reviewed action:
        recorded, not counted); the rules the action is judged by."""
        assert self.acting is not None, "run.item(..., acting=rules) to act"
        run = self.run
        if not run.ledger.start_acting(
            run.robot,
            self.key,
            run_id=run.run_id,
            action=action.name,
            amount_cents=action.amount_cents,
            fingerprint=action.fingerprint,
            daily_cap_cents=run.cap_left(action.daily_cap_cents, action.cap_scope),
            day=run.clock.today(),
            review=action.review,
            cap_scope=action.cap_scope,
            details={"row": dict(self.row)} if self.row else None,
        ):
            if action.review is not None:
                raise _AlreadyActing(self.key)
            raise BusinessException(
                "DAILY_CAP_REACHED", run.reason_text("DAILY_CAP_REACHED"), item_id=self.key
            )
        self._not_ours = False
        return self.acting

    def done(
        self,
        *,
        acted: bool = True,
        details: dict[str, Any] | None = None,
        fingerprint: str | None = None,
        counts: Sequence[str] = (),
    ) -> None:
        """Record the item as done; ``acted=False`` when someone else did it (no money).
        ``counts``: what this ending counts as in the run's counts (linked, pages_read…)."""
        details = {**(details or {}), **(self._row_details() or {})}
        _done(
            self.run, self.key, acted=acted, details=details, fingerprint=fingerprint, counts=counts
        )
        self.outcome = Outcome.DONE

    def handled_elsewhere(
        self, shown: str, *, fingerprint: str | None, details: dict[str, Any] | None = None
    ) -> None:
        """Someone else moved the record on (it now shows ``shown``): done, not ours, no
        money, counted as handled elsewhere. A run where most items end so stops
        (``hooks.ElsewhereGuard``): its list does not show what the scenario says."""
        logger.info("{}: handled elsewhere (now {})", self.key, shown)
        self.done(
            acted=False,
            fingerprint=fingerprint,
            details={"handled_elsewhere": shown, **(details or {})},
            counts=[Count.HANDLED_ELSEWHERE],
        )
        self.elsewhere = True


class _AlreadyActing(BusinessException):
    """A reviewed action found the item already done or acting (another run got there)."""

    def __init__(self, key: str) -> None:
        super().__init__("ALREADY_DONE", "another run acted on it meanwhile", item_id=key)


AlreadyActing = _AlreadyActing


async def settle_acting(
    run: RobotRun, rules: ActingRules[R], read_live: Callable[[ItemView], Awaitable[R]]
) -> None:
    """Items a killed run left *acting*: read each live record, never act here. Landed →
    done (ours, money kept); still pending → pending again; moved on → done, not ours."""
    for view in run.ledger.items(run.robot, state=State.ACTING):
        with run.holding(view.item_key) as mine:
            if not mine:  # a cluster worker works it now: it settles it itself
                continue
            if run.dispatch is not None:  # held now: as it is, not as it was listed
                fresh = run.ledger.get(run.robot, view.item_key)
                if fresh is None or fresh.state != State.ACTING:
                    continue
                view = fresh
            await _settle(run, rules, view, await read_live(view))


def landed_elsewhere_than_its_block(
    run: RobotRun,
    rules: ActingRules[R],
    key: str,
    action: str,
    live: R,
    *,
    details: dict[str, Any],
    counts: Sequence[str] = (),
) -> None:
    """An action of ours proved landed after its item's block ended (a batch that pressed
    it, verified by its row): done, ours, its money kept, counted as ``counts``."""
    _done(
        run,
        key,
        acted=True,
        details={"verified_as": rules.describe(live), "action": action, **details},
        fingerprint=rules.fingerprint(live),
        counts=counts,
    )


def closed_elsewhere(
    run: RobotRun, key: str, shown: str, *, fingerprint: str | None, count: str
) -> None:
    """An item waiting for a person that someone handled in the shop (it now shows
    ``shown``): it leaves the open set (and the queue), not ours, counted as ``count``."""
    _done(
        run,
        key,
        acted=False,
        details={"closed_elsewhere": shown},
        fingerprint=fingerprint,
        counts=[count],
    )
    logger.info("{} was handled in the shop (now {})", key, shown)


def _done(
    run: RobotRun,
    key: str,
    *,
    acted: bool,
    details: dict[str, Any],
    fingerprint: str | None,
    counts: Sequence[str],
) -> None:
    """The *done* row, and what it counts as: every way an item ends done comes here."""
    run.ledger.finish(
        run.robot,
        key,
        State.DONE,
        run_id=run.run_id,
        acted=acted,
        details={**details, ENDED_AS: [str(c) for c in counts]},
        fingerprint=fingerprint,
    )
    for count in counts:
        run.count(count)


def failed_outside_a_block(run: RobotRun, key: str, exc: BaseException) -> None:
    """An item whose handler raised what its block did not take (a bug in a robot, met by a
    cluster worker, which goes on): given up as a system exception, for a person."""
    run.ledger.give_up(run.robot, key, exc, run_id=run.run_id, evidence=[])
    run.count(Count.SYSTEM_EXCEPTION)


async def _settle(run: RobotRun, rules: ActingRules[R], view: ItemView, live: R) -> None:
    """One acting item settled from its live record."""
    verdict = rules.judge(view.action, live)
    shown = rules.describe(live)
    if verdict == Verdict.NOT_LANDED:
        logger.info("{}: interrupted before the action landed; back to pending", view.item_key)
        run.ledger.finish(
            run.robot,
            view.item_key,
            State.PENDING,
            run_id=run.run_id,
            message="interrupted before acting landed; re-decided",
        )
        return
    logger.info(
        "{}: interrupted after acting; live record shows {} (ours: {})",
        view.item_key,
        shown,
        verdict == Verdict.LANDED,
    )
    run.ledger.finish(
        run.robot,
        view.item_key,
        State.DONE,
        run_id=run.run_id,
        acted=verdict == Verdict.LANDED,
        fingerprint=rules.fingerprint(live),
        details={"settled_on_resume": shown},
    )
    run.count(Count.SETTLED_ON_RESUME)


__all__ = [
    "ENDED_AS",
    "Acted",
    "ActingRules",
    "Action",
    "AlreadyActing",
    "Count",
    "DesktopSurface",
    "Item",
    "Outcome",
    "PageSurface",
    "Verdict",
    "closed_elsewhere",
    "failed_outside_a_block",
    "landed_elsewhere_than_its_block",
    "settle_acting",
]
