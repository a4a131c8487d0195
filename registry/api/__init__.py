"""The partner REST API's shared machinery: key authentication, scopes, throttling,
the one error shape, pagination and the schema's common parts.

Each app's `api.py` holds its serializers and views; `registry/api_urls.py` mounts
them under /api/v1/.
"""

from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

# Partners speak JSON only; set on each API view rather than globally so other
# DRF views in the project keep their own choices.
JSON_RENDERERS = [JSONRenderer]
JSON_PARSERS = [JSONParser]
