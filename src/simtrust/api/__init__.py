"""HTTP API: the FastAPI application, its dependencies and problem details."""

from simtrust.api.app import BodyLimit, create_app
from simtrust.api.deps import (
    CurrentPrincipal,
    CurrentRuntime,
    Principal,
    get_principal,
    get_runtime,
)
from simtrust.api.problems import PROBLEM_BASE, problem

__all__ = [
    "PROBLEM_BASE",
    "BodyLimit",
    "CurrentPrincipal",
    "CurrentRuntime",
    "Principal",
    "create_app",
    "get_principal",
    "get_runtime",
    "problem",
]
