"""A clock the test sets by hand (the stages take ``clock=`` callables returning aware datetimes)."""

from datetime import datetime


class FakeClock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment
