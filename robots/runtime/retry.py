"""Bounded retries for system exceptions only; business exceptions pass straight through."""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger
from playwright.async_api import Error as PlaywrightError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from robots.errors import SystemException

# What counts as temporary. BusinessException is deliberately absent: the data says no.
TEMPORARY: tuple[type[BaseException], ...] = (SystemException, PlaywrightError, TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a system exception."""

    attempts: int = 3
    wait_initial_s: float = 0.5
    wait_max_s: float = 5.0

    def retrying(self, what: str) -> AsyncRetrying:
        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            # INFO: a retry that recovers is for the run's log, not the operator's console
            # (`-v` shows it); the item's final failure is logged as an error
            logger.info(
                "{} failed (attempt {}/{}): {}: {}; retrying",
                what,
                state.attempt_number,
                self.attempts,
                type(exc).__name__,
                str(exc).splitlines()[0] if exc else "",
            )

        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.wait_initial_s, max=self.wait_max_s),
            retry=retry_if_exception_type(TEMPORARY),
            before_sleep=log_retry,
            reraise=True,
        )
