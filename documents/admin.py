from documents import admin_delivery  # noqa: F401  (registers Delivery)
