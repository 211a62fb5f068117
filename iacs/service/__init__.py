"""The service layer: the one path from a page or an API call to a decision and a write."""

from iacs.service.access import AccessService, ServiceConfig
from iacs.service.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleRefused,
    ServiceError,
    Unavailable,
)

__all__ = [
    "AccessService",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "RuleRefused",
    "ServiceConfig",
    "ServiceError",
    "Unavailable",
]
