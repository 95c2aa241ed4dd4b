"""One Lambda function per resource group: services, states, tasks."""

from lib.api.framework_imports import defer_unused_resolvers, pause_collector

# No collector passes while the handler imports (each handler calls imports_done once built).
pause_collector()
# Before any handler imports Powertools' event handler: only the REST resolver's modules load.
defer_unused_resolvers()
