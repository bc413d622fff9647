"""Accounts, roles, login sessions and the audit log.

* :mod:`pathviz.auth.policy`: roles, permissions, :class:`~pathviz.auth.policy.Actor` and
  :func:`~pathviz.auth.policy.require` (the backend's check, called by the job queue, the model
  registry, the workspace and the account functions themselves, not only by the pages).
* :mod:`pathviz.auth.passwords`: argon2id hashing (argon2-cffi) and the password rules.
* :mod:`pathviz.auth.accounts`: local users, login with lockout, session tokens with idle and
  absolute expiry, the first admin.
* :mod:`pathviz.auth.audit`: the append-only, hash-chained audit log.
* :mod:`pathviz.auth.web`: the login/logout routes and the middleware that keeps every other route
  of the app (pages, websocket, tiles) behind a login.
"""
