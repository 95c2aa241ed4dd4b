"""The two statuses of a service, state or task (§3): active (started, not completed) and completed
(an end event was recorded, by the element itself, its parent, or auto-complete)."""

from enum import StrEnum


class Status(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
