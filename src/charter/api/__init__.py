"""The node's REST API: FastAPI app, routes, problem+json errors."""

from charter.api.app import create_app
from charter.api.info import NodeInfo
from charter.api.problems import PROBLEM_JSON, Problem

__all__ = ["PROBLEM_JSON", "NodeInfo", "Problem", "create_app"]
