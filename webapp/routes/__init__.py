"""The app's routes, one module per area. A later step adds its module's router here (evaluations, disputes,
calibration, managers' scorecards, coaching). Every route is behind the session gate (`webapp.middleware`): a
route needs nothing to require login or CSRF; it calls `webapp.scope` for what the user may see."""

from webapp.routes import account, calls, queue

ROUTERS = [account.router, queue.router, calls.router]
