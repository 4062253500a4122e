"""A loopback imitation of PlanMill REST API 1.5 (see :class:`PlanMillSandbox`)."""

from .app import PlanMillSandbox

__all__ = ["PlanMillSandbox"]
