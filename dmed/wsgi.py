from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmed.settings")
application = get_wsgi_application()

# Load every resource model now, in the server's master process when it preloads, rather than
# on each worker's first request.
from fhirserver.capability import resource_capabilities  # noqa: E402

resource_capabilities()
