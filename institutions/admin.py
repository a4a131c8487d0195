from institutions import admin_apikeys, admin_keys  # noqa: F401  (register their models)
