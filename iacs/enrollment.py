"""IND-1: the Medicare enrollment source that decides whether a practitioner may register alone.

The seed allows an individual practitioner to register without an organization when they were
enrolled in Medicare after November 2003 (or updated their enrollment since). The source is
pluggable; the project ships one backed by a CSV file (``npi,name,enrolled_on``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Protocol

ENROLLMENT_CUTOFF = date(2003, 12, 1)
"""Enrolled (or updated) on or after this day: 'after November 2003' in the seed."""


@dataclass(frozen=True, slots=True)
class Enrollment:
    npi: str
    name: str
    enrolled_on: date


class EnrollmentSource(Protocol):
    """Answers whether an NPI belongs to a practitioner eligible for individual registration."""

    def lookup(self, npi: str) -> Enrollment | None: ...


def is_eligible(enrollment: Enrollment | None) -> bool:
    """IND-1: enrolled, and enrolled or updated after November 2003."""
    return enrollment is not None and enrollment.enrolled_on >= ENROLLMENT_CUTOFF


class FileEnrollmentSource:
    """Enrollments read once from a CSV file; the bundled sample is used when no file is named."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            text = resources.files("iacs.data").joinpath("enrollments.csv").read_text()
        else:
            text = Path(path).read_text()
        self._by_npi: dict[str, Enrollment] = {}
        for row in csv.DictReader(text.splitlines()):
            npi = (row.get("npi") or "").strip()
            self._by_npi[npi] = Enrollment(
                npi, (row.get("name") or "").strip(), date.fromisoformat(row["enrolled_on"])
            )

    def lookup(self, npi: str) -> Enrollment | None:
        return self._by_npi.get(npi)
