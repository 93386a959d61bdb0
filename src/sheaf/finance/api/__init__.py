"""The MX dialects of the finance domain: the Platform API and Nexus."""

from __future__ import annotations

import re

from fastapi import APIRouter

from sheaf.finance.api import nexus, platform

router = APIRouter()
router.include_router(platform.router)
router.include_router(nexus.router)

# Paths answered in MX's error envelope: the Platform API's, Nexus', the SSO token's.
_MX_PATHS = re.compile(
    r"^/(users|institutions|members|accounts|transactions|holdings|sessions)(/|$)"
    r"|^/[^/]+/users/[^/]+/api_token(\.json)?$")
_NEXUS_PATHS = re.compile(r"^/(members|accounts|transactions|holdings|sessions)(/|$)"
                          r"|^/[^/]+/users/[^/]+/api_token(\.json)?$")


def is_mx_path(path: str) -> bool:
    return _MX_PATHS.match(path) is not None


def is_nexus_path(path: str) -> bool:
    return _NEXUS_PATHS.match(path) is not None
