"""omni's own package, on two floors.

The foundation is what the apps (`catalog` ← `channels` ← `synclogs`) build on. Its modules
import no app, not even inside a function, so every app may import any of them without a cycle
and without reaching an app above it:

- `actors` (who made a change), `models` (the API's tokens and idempotency keys, the abstract
  TimeStampedModel) and `migrations`;
- `auth` (API tokens), `idempotency` (Idempotency-Key), `api_base` (input types, pagination,
  errors and filters every router shares), `api_limits` (the request-size limit);
- `bulk` (bulk writes, and the only place that chooses between PostgreSQL and the other
  databases for them), `leases` (short leases kept by a heartbeat), `workers` (the django-q2
  cluster);
- `admin` (the tokens' admin), `admin_tools` (admin pieces the apps share), `csp` (the admin's
  Content-Security-Policy);
- the commands `create_api_token` and `worker`.

The project floor puts the apps together: the API that mounts their routers (`api`), the URLs,
the settings, the WSGI entry point, the demo, the schedules and the benchmarks. Its modules,
named in PROJECT_MODULES, may import everything; no app imports them. A module of omni not
named there is foundation. tests/test_layers.py holds the code to these rules.
"""

# The project floor, by dotted name; a package stands for every module in it.
PROJECT_MODULES = (
    "omni.api",
    "omni.urls",
    "omni.settings",
    "omni.settings_test",
    "omni.wsgi",
    "omni.benchmarks",
    "omni.management.commands.bench",
    "omni.management.commands.demo",
    "omni.management.commands.screenshots",
    "omni.management.commands.setup_schedules",
)
