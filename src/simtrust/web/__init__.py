"""The operator and fleet dashboard, served by ``simtrust serve`` at ``/ui/``.

Server-rendered pages (Jinja2 templates and static files shipped in this
package, no build step) over the same services, roles and tenant scoping as
the HTTP API; see docs/dashboard.md.
"""

from simtrust.web._fleet import FleetQuery, SimFilter, parse_filter
from simtrust.web._session import Session, SessionStore
from simtrust.web._site import create_dashboard, create_site

__all__ = [
    "FleetQuery",
    "Session",
    "SessionStore",
    "SimFilter",
    "create_dashboard",
    "create_site",
    "parse_filter",
]
