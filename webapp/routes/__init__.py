"""The app's routes, one module per area. Every route is behind the session gate (`webapp.middleware`): a route
needs nothing to require login or CSRF; it calls `webapp.scope` for what the user may see and do."""

from webapp.routes import account, calibration, calls, coaching, evaluations, queue, roles, samples, scorecards

ROUTERS = [account.router, queue.router, calls.router, evaluations.router, roles.router, coaching.router,
           samples.router, calibration.router, scorecards.router]
