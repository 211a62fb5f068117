"""Sample PQRI feedback reports / PS&R application: sign in through IACS, authorize by claims.

See ``README.md`` next to this file; run it with ``python -m examples.pqri_psr_app``.
"""

from .app import APPLICATIONS, AppConfig, SignInStore, create_app
from .claims import IacsClaims

__all__ = ["APPLICATIONS", "AppConfig", "IacsClaims", "SignInStore", "create_app"]
